"""The controller's network: an LSTM unrolled once per token of a ``MultiDiscrete`` action.

A :class:`TokenDecoder` writes an action ``a = (a_0, ..., a_{T-1})`` one token at a time. Step
``t`` feeds an input ``x_t`` to the LSTM, reads token ``t``'s own softmax head off the hidden
state and picks ``a_t``. ``x_0`` is a learned start vector; what ``x_{t+1}`` is depends on ``feed``:

``"sample"`` (the default; Zoph & Le)
    A learned embedding of the token just picked, ``x_{t+1} = E_t[a_t]``. Later tokens are
    conditioned on earlier ones, so the distribution is truly autoregressive.
``"softmax"`` (Arora & Krone)
    Token ``t``'s softmax vector itself, zero-padded to the largest number of choices. The inputs
    do not depend on the picked tokens, so every step's distribution is fixed before anything is
    sampled and the joint distribution factorises into independent per-token categoricals.

The decoder is used in two ways, both batched over the batch dimension:

- :meth:`TokenDecoder.decode` picks tokens (sampled, or greedily by argmax, feeding each pick to
  the next step).
- :meth:`TokenDecoder.token_log_probs` re-scores given actions by teacher forcing. With
  ``"sample"`` every input is known in advance (embedded in one lookup; the LSTM cell then runs
  once per token over the whole batch); with ``"softmax"`` the distribution is the same for every
  action and is computed once.

Both return the per-token log-probability tables ``(batch, T, max_choices)``, padded with
``-inf`` beyond each token's choices, from which :func:`path_log_prob` reads the
log-probability of the path and :func:`path_entropy` the sum of its per-token entropies.

**Allowed actions.** With ``allowed`` (a boolean table over every joint action, ``feed="sample"``
only), the decoder writes only allowed actions: at step ``t`` a choice is masked out (its
log-probability ``-inf``) unless some allowed action starts with the prefix ``a_<t`` followed by
it, so every sampled or greedy action is allowed and the probabilities of the allowed actions sum
to one. This is how a budget known before training (an r_param size limit) is kept out of the
search instead of learnt from its penalty.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch as th
from torch import nn
from torch.nn import functional as F

FEEDS = ("sample", "softmax")
"""What the LSTM's next input is: an embedding of the picked token, or the softmax vector."""

HEAD_GAIN = 0.01
"""Orthogonal-init gain of the softmax heads: small logits, so the first policy is near uniform."""

MAX_ALLOWED_TABLE = 1 << 20
"""The most joint actions an ``allowed`` table may cover (A_small has 64; A_large far too many)."""


class TokenDecoder(nn.Module):
    """An LSTM with one softmax head per token; see the module docstring.

    :param nvec: number of choices of each token (a ``MultiDiscrete`` space's ``nvec``)
    :param hidden_size: LSTM hidden units (100 in the paper)
    :param feed: ``"sample"`` or ``"softmax"``, what the next step's input is
    :param embedding_dim: size of the token embeddings (``feed="sample"`` only);
        ``None`` means ``hidden_size``
    :param allowed: ``None`` (every action), or a boolean array of shape ``nvec`` (at most
        :data:`MAX_ALLOWED_TABLE` entries, at least one ``True``; ``feed="sample"`` only): the
        decoder writes only the actions it marks ``True`` (see the module docstring)
    """

    def __init__(
        self,
        nvec: Sequence[int],
        hidden_size: int = 100,
        feed: str = "sample",
        embedding_dim: int | None = None,
        allowed=None,
    ) -> None:
        super().__init__()
        if feed not in FEEDS:
            raise ValueError(f"feed={feed!r} is not supported; choose one of {', '.join(map(repr, FEEDS))}.")
        if feed == "softmax" and embedding_dim is not None:
            raise ValueError(
                "embedding_dim only applies to feed='sample'; with feed='softmax' the input is the "
                "zero-padded softmax vector, so leave embedding_dim as None."
            )
        self.nvec = tuple(int(n) for n in nvec)
        if not self.nvec or min(self.nvec) < 1:
            raise ValueError(f"nvec must be a non-empty list of positive sizes, got {list(nvec)}.")
        self.num_tokens = len(self.nvec)
        self.max_choices = max(self.nvec)
        self.hidden_size = int(hidden_size)
        self.feed = feed
        self.embedding_dim = (self.hidden_size if embedding_dim is None else int(embedding_dim)) if feed == "sample" else None
        input_size = self.embedding_dim if feed == "sample" else self.max_choices

        # Batch-independent first input: the observation of a one-step NAS MDP is constant.
        self.start = nn.Parameter(th.zeros(input_size))
        self.lstm = nn.LSTMCell(input_size, self.hidden_size)
        self.heads = nn.ModuleList(nn.Linear(self.hidden_size, n) for n in self.nvec)
        # The last token is never fed back, so it has no embedding (it would get no gradient).
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, self.embedding_dim) for n in self.nvec[:-1]
        ) if feed == "sample" else nn.ModuleList()

        offsets = th.tensor((0, *self.nvec)).cumsum(0)[:-1]
        choice = th.arange(self.max_choices)
        valid = choice[None, :] < th.tensor(self.nvec)[:, None]
        # Column of token t's choice k in the heads' concatenated logits (0 where k is padding).
        self.register_buffer("_valid", valid, persistent=False)
        self.register_buffer("_columns", th.where(valid, offsets[:, None] + choice[None, :], 0), persistent=False)
        self.register_buffer("_offsets", offsets, persistent=False)

        for head in self.heads:
            nn.init.orthogonal_(head.weight, gain=HEAD_GAIN)
            nn.init.zeros_(head.bias)

        self.masked = allowed is not None
        if self.masked:
            if feed != "sample":
                raise ValueError(
                    "allowed actions need feed='sample': a masked choice depends on the tokens "
                    "picked before it, which feed='softmax' does not feed to the LSTM.")
            for t, mask in enumerate(prefix_masks(allowed, self.nvec)):
                # Row p: which choices of token t may follow the prefix whose flat index is p.
                padding = mask.new_zeros(mask.shape[0], self.max_choices - self.nvec[t])
                self.register_buffer(f"_prefix_mask_{t}", th.cat([mask, padding], dim=1), persistent=False)

    def decode(self, batch_size: int, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:
        """Pick ``batch_size`` actions token by token.

        :param batch_size: number of actions
        :param deterministic: pick the argmax at each step (greedy decoding) instead of sampling
        :return: actions ``(batch, T)`` (long) and the log-probability tables
            ``(batch, T, max_choices)`` along their paths
        """
        if self.feed == "softmax":
            tables = self._softmax_feed_tables().expand(batch_size, -1, -1)
            if deterministic:
                actions = tables.argmax(dim=2)
            else:
                # The per-token distributions are fixed, so all tokens are drawn in one call.
                actions = th.multinomial(tables[0].exp(), batch_size, replacement=True).T
            return actions, tables

        x = self.start.expand(batch_size, -1)
        state = self._zero_state(batch_size)
        # The flat index of the tokens picked so far, which selects each step's mask row.
        prefix = th.zeros(batch_size, dtype=th.long, device=self.start.device) if self.masked else None
        tokens, tables = [], []
        for t, head in enumerate(self.heads):
            state = self._step(x, state)
            logits = F.linear(state[0], head.weight, head.bias)
            if self.masked:
                allowed = self._prefix_mask(t)[prefix, : self.nvec[t]]
                logits = logits.masked_fill(~allowed, -th.inf)
                prefix = prefix * self.nvec[t]
            log_p = F.log_softmax(logits, dim=1)
            token = log_p.argmax(dim=1) if deterministic else th.multinomial(log_p.exp(), 1).squeeze(1)
            tokens.append(token)
            tables.append(F.pad(log_p, (0, self.max_choices - self.nvec[t]), value=-th.inf))
            if self.masked:
                prefix = prefix + token
            if t < self.num_tokens - 1:
                x = F.embedding(token, self.embeddings[t].weight)
        return th.stack(tokens, dim=1), th.stack(tables, dim=1)

    def token_log_probs(self, actions: th.Tensor) -> th.Tensor:
        """Teacher-forced log-probability tables of given actions.

        :param actions: ``(batch, T)`` actions, any dtype (PPO's rollout buffer holds floats)
        :return: ``(batch, T, max_choices)``: entry ``[i, t, k]`` is ``log p(a_t = k | a_<t)`` for
            the prefix ``actions[i, :t]``, ``-inf`` where ``k`` is beyond token ``t``'s choices
        """
        actions = actions.long()
        batch_size = actions.shape[0]
        if self.feed == "softmax":
            return self._softmax_feed_tables().expand(batch_size, -1, -1)
        embedding_table = th.cat([embedding.weight for embedding in self.embeddings])
        fed = F.embedding(actions[:, :-1] + self._offsets[:-1], embedding_table).unbind(1)
        state = self._step(self.start.expand(batch_size, -1), self._zero_state(batch_size))
        hidden = [state[0]]
        for x in fed:
            state = self._step(x, state)
            hidden.append(state[0])
        return self._tables(th.stack(hidden), self._allowed_along(actions)).transpose(0, 1)

    def _softmax_feed_tables(self) -> th.Tensor:
        """The ``(1, T, max_choices)`` tables of ``feed="softmax"``: one unroll, no sampling."""
        x, state, hidden = self.start.view(1, -1), self._zero_state(1), []
        for t, head in enumerate(self.heads):
            state = self._step(x, state)
            hidden.append(state[0])
            if t < self.num_tokens - 1:
                x = F.pad(F.softmax(head(state[0]), dim=1), (0, self.max_choices - self.nvec[t]))
        return self._tables(th.stack(hidden)).transpose(0, 1)

    def _zero_state(self, batch_size: int) -> tuple[th.Tensor, th.Tensor]:
        """The LSTM's first ``(h, c)``: zeros, as ``nn.LSTMCell`` starts without a state."""
        zeros = th.zeros(batch_size, self.hidden_size, dtype=self.start.dtype, device=self.start.device)
        return zeros, zeros

    def _step(self, x: th.Tensor, state: tuple[th.Tensor, th.Tensor]) -> tuple[th.Tensor, th.Tensor]:
        """One LSTM step on a 2-D batch: the kernel ``nn.LSTMCell`` calls, called directly
        (same result, without the module call's hooks and input checks)."""
        lstm = self.lstm
        return th.lstm_cell(x, state, lstm.weight_ih, lstm.weight_hh, lstm.bias_ih, lstm.bias_hh)

    def _prefix_mask(self, t: int) -> th.Tensor:
        return getattr(self, f"_prefix_mask_{t}")

    def _allowed_along(self, actions: th.Tensor) -> th.Tensor | None:
        """``(T, batch, max_choices)``: the choices allowed at each step after ``actions``'s
        prefixes (``None`` without an ``allowed`` table)."""
        if not self.masked:
            return None
        prefix = th.zeros(actions.shape[0], dtype=th.long, device=actions.device)
        rows = []
        for t, n in enumerate(self.nvec):
            rows.append(self._prefix_mask(t)[prefix])
            prefix = prefix * n + actions[:, t]
        return th.stack(rows)

    def _tables(self, hidden: th.Tensor, allowed: th.Tensor | None = None) -> th.Tensor:
        """Token ``t``'s padded log-softmax from hidden states ``(T, batch, hidden)``, all heads
        at once; ``allowed`` ``(T, batch, max_choices)`` masks choices out."""
        weight = th.cat([head.weight for head in self.heads])
        bias = th.cat([head.bias for head in self.heads])
        logits = F.linear(hidden, weight, bias)
        columns = self._columns.unsqueeze(1).expand(-1, hidden.shape[1], -1)
        logits = logits.gather(2, columns).masked_fill(~self._valid.unsqueeze(1), -th.inf)
        if allowed is not None:
            logits = logits.masked_fill(~allowed, -th.inf)
        return F.log_softmax(logits, dim=2)


def prefix_masks(allowed, nvec: Sequence[int]) -> list[th.Tensor]:
    """Per token ``t``, a ``(prod(nvec[:t]), nvec[t])`` boolean table: row ``p`` marks the
    choices of token ``t`` that some allowed action takes after the prefix whose flat
    (row-major) index is ``p`` (every choice, for a prefix that no allowed action starts with).

    :param allowed: a boolean array of shape ``nvec``, at least one entry ``True``.
    :raises ValueError: on a wrong shape, a table of more than :data:`MAX_ALLOWED_TABLE`
        actions, or one that allows nothing.
    """
    nvec = tuple(int(n) for n in nvec)
    size = math.prod(nvec)
    if size > MAX_ALLOWED_TABLE:
        raise ValueError(f"an allowed-actions table covers every joint action; this space has {size:,}, "
                         f"more than the {MAX_ALLOWED_TABLE:,} allowed (e.g. A_small's 64)")
    table = th.as_tensor(allowed, dtype=th.bool)
    if tuple(table.shape) != nvec:
        raise ValueError(f"allowed has shape {tuple(table.shape)}; it needs the action space's nvec {nvec}")
    if not table.any():
        raise ValueError("allowed marks no action as allowed; at least one must be")
    masks = []
    for t in range(len(nvec)):
        reachable = table.reshape(*nvec[: t + 1], -1).any(dim=-1).reshape(-1, nvec[t])
        # A prefix no allowed action starts with is never decoded; leaving its row open keeps
        # the log-probability of a disallowed action -inf (not NaN) when it is scored.
        reachable[~reachable.any(dim=1)] = True
        masks.append(reachable)
    return masks


def path_log_prob(tables: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """``log p(a) = sum_t log p(a_t | a_<t)``, ``(batch,)``, from the tables computed along ``actions``."""
    return tables.gather(2, actions.long().unsqueeze(2)).squeeze(2).sum(dim=1)


def path_entropy(tables: th.Tensor) -> th.Tensor:
    """``sum_t H(p(. | a_<t))``, ``(batch,)``: the per-token entropies along the tables' path."""
    return -(tables.exp() * tables.masked_fill(~tables.isfinite(), 0.0)).sum(dim=(1, 2))
