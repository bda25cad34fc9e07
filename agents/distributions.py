"""An autoregressive categorical distribution over ``MultiDiscrete`` actions, in SB3's interface.

SB3's ``MultiCategoricalDistribution`` treats an action's dimensions as independent categoricals
and sums their log-probabilities and entropies. :class:`AutoregressiveCategoricalDistribution`
is the same idea where each dimension is conditioned on the ones before it:

.. math:: \\log p(a) = \\sum_t \\log p(a_t \\mid a_{<t})

Its parameters are not logits but a :class:`~agents.token_decoder.TokenDecoder` (the network that
writes the tokens) and a batch size, so every method runs the decoder: ``sample()`` and
``mode()`` decode token by token (sampling, or taking the argmax and feeding it on), and
``log_prob(actions)`` scores given actions by teacher forcing. The object is lazy: each call uses
the decoder's parameters as they are at that moment.

Entropy
-------
The exact joint entropy needs a sum over every action (8^20 of them in A_large), so ``entropy()``
returns the sum of the per-token entropies along one path ``a``:

.. math:: \\hat H(a) = \\sum_t H\\big(p(\\cdot \\mid a_{<t})\\big)

By the chain rule, :math:`H(A) = \\sum_t H(A_t \\mid A_{<t}) = E_{a \\sim p}[\\hat H(a)]`, so for a
path drawn from ``p`` itself :math:`\\hat H(a)` is an unbiased single-sample estimate of the joint
entropy. The path is the one last decoded or scored: after ``sample()`` it is unbiased; after
``log_prob(actions)`` (as in PPO's ``evaluate_actions``) it is the estimate along the given
actions, unbiased for the current policy only while the actions' behaviour policy equals it (PPO's
first epoch) and otherwise off by the policy change. Its gradient with the path held fixed is not
the gradient of :math:`H(A)` (the score-function term of the path's own probability is missing);
it raises each conditional's entropy along the paths seen, the usual NAS-controller entropy bonus.
With ``feed="softmax"`` the conditionals do not depend on the path, so :math:`\\hat H` is the exact
joint entropy. If nothing has been decoded yet, ``entropy()`` samples a path first.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import torch as th
from stable_baselines3.common.distributions import Distribution

from .token_decoder import TokenDecoder, path_entropy, path_log_prob

SelfAutoregressiveCategoricalDistribution = TypeVar(
    "SelfAutoregressiveCategoricalDistribution", bound="AutoregressiveCategoricalDistribution"
)


class AutoregressiveCategoricalDistribution(Distribution):
    """Categorical over ``MultiDiscrete`` actions, each token conditioned on the earlier ones.

    :param action_dims: number of choices of each token (the action space's ``nvec``)
    """

    def __init__(self, action_dims: Sequence[int]) -> None:
        super().__init__()
        self.action_dims = [int(n) for n in action_dims]
        self.decoder: TokenDecoder | None = None
        self.batch_size = 0
        self._path_tables: th.Tensor | None = None

    def proba_distribution_net(
        self, hidden_size: int = 100, feed: str = "sample", embedding_dim: int | None = None,
        allowed=None,
    ) -> TokenDecoder:
        """Create the network whose unroll defines the distribution.

        :param hidden_size: LSTM hidden units
        :param feed: ``"sample"`` or ``"softmax"`` (see :mod:`agents.token_decoder`)
        :param embedding_dim: token embedding size for ``feed="sample"``
        :param allowed: ``None``, or a boolean array of shape ``action_dims``: the only actions
            the distribution gives probability to
        :return: the decoder, to register on the policy
        """
        return TokenDecoder(self.action_dims, hidden_size=hidden_size, feed=feed,
                            embedding_dim=embedding_dim, allowed=allowed)

    def proba_distribution(
        self: SelfAutoregressiveCategoricalDistribution, decoder: TokenDecoder, batch_size: int
    ) -> SelfAutoregressiveCategoricalDistribution:
        """Bind the distribution to a decoder, for ``batch_size`` actions at a time.

        :return: self
        """
        if list(decoder.nvec) != self.action_dims:
            raise ValueError(f"decoder writes tokens {list(decoder.nvec)}, but the distribution is over {self.action_dims}.")
        self.decoder = decoder
        self.batch_size = int(batch_size)
        self._path_tables = None
        return self

    def _decoder(self) -> TokenDecoder:
        if self.decoder is None:
            raise RuntimeError("call proba_distribution(decoder, batch_size) before using the distribution.")
        return self.decoder

    def log_prob(self, actions: th.Tensor) -> th.Tensor:
        """Teacher-forced ``log p(actions)``, shape ``(batch,)``; the path for ``entropy()``."""
        self._path_tables = self._decoder().token_log_probs(actions)
        return path_log_prob(self._path_tables, actions)

    def entropy(self) -> th.Tensor:
        """Sum of per-token entropies along the last decoded or scored path (see module docstring)."""
        if self._path_tables is None:
            self.sample()
        assert self._path_tables is not None
        return path_entropy(self._path_tables)

    def sample(self) -> th.Tensor:
        """Sample ``batch_size`` actions, ``(batch, T)`` long."""
        return self.decode(deterministic=False)[0]

    def mode(self) -> th.Tensor:
        """Greedy decode: the argmax at every step, fed on to the next (not necessarily the joint argmax)."""
        return self.decode(deterministic=True)[0]

    def decode(self, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:
        """Decode ``batch_size`` actions in one unroll.

        :param deterministic: greedy decoding instead of sampling
        :return: actions ``(batch, T)`` and their log-probabilities ``(batch,)``
        """
        actions, self._path_tables = self._decoder().decode(self.batch_size, deterministic=deterministic)
        return actions, path_log_prob(self._path_tables, actions)

    def actions_from_params(
        self, decoder: TokenDecoder, batch_size: int, deterministic: bool = False
    ) -> th.Tensor:
        self.proba_distribution(decoder, batch_size)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, decoder: TokenDecoder, batch_size: int) -> tuple[th.Tensor, th.Tensor]:
        self.proba_distribution(decoder, batch_size)
        return self.decode(deterministic=False)
