"""Zero-cost scores: a guess, from one batch and no training, of how well a cell will train.

Each score looks at a freshly initialised child network and returns one float; for every score
here, higher means predicted better. Scoring a cell with every score takes 0.2 s (A_small) to
about 1.3 s (5-block A_large) on one CPU thread, where training it takes minutes, so the scores
can rank cells before any of them is trained.

Tutorial
--------
Score one cell with every score::

    from nas_env.data import load_dataset
    from nas_env.spaces import SmallCell
    from nas_env.zero_cost import SCORES, score_cell

    data = load_dataset("mnist")
    scores = score_cell(SmallCell("conv3x3", "max_pool2x2"), data)
    # {'synflow': ..., 'snip': ..., 'grad_norm': ..., 'naswot': ..., 'jacob_cov': ...,
    #  'zico': ..., 'params': ..., 'macs': ...}

:func:`score_cell` builds a narrow proxy of the child network (``filters=(16, 32)``,
``fc_units=256``: the same architecture, cheaper to probe) ``inits`` times from seeds derived
from ``seed``, scores each on the first ``batch_size`` training images (the same batch for every
cell, so two cells differ by their architecture, not their data), and averages over the
initialisations. The same seed gives the same floats.

The scores of one network and batch are also public, one function per score (:data:`SCORES`
names them): :func:`synflow`, :func:`snip`, :func:`grad_norm`, :func:`naswot`,
:func:`jacob_cov` and :func:`zico`, each ``score(net, x, y) -> float``; :func:`param_count` and
:func:`macs` count the paper-size network of a cell instead.

Conventions shared by the scores
--------------------------------
- A score never changes the caller's net (weights, BatchNorm statistics, gradients, mode), the
  global RNG or the thread count: it works on a deep copy.
- The copy runs in training mode, as in the reference code of the papers: BatchNorm normalises
  with the statistics of the batch. Dropout is switched off, since it would only add noise to a
  one-batch score (and draw from the global RNG).
- Outputs are the pre-softmax logits: :class:`~nas_env.child_net.ChildNet` ends in
  ``log_softmax``, so its classifier's output is taken; any other module's output is taken as
  logits. The loss ``L`` is the cross-entropy of the logits, the NLL of the batch.
- "Weights" are those of ``nn.Conv2d`` and ``nn.Linear`` layers (the reference code's prunable
  layers); BatchNorm's scale and shift are not counted.
- ``splits`` runs the batch as that many mini-batches (``torch.tensor_split``), as the
  reference code's ``split_data`` does; gradient scores then use the mean of the mini-batch
  gradients. :func:`score_cell` computes :func:`snip`, :func:`grad_norm`, :func:`naswot`,
  :func:`jacob_cov` and :func:`zico` from one shared pass over ``splits=2`` mini-batches (the
  mini-batches ZiCo needs), with exactly the values these functions give with ``splits=2``.
"""

from __future__ import annotations

import copy
import functools
import time
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from .child_net import ChildNet, network_size
from .spaces import LargeCell, SmallCell

if TYPE_CHECKING:  # only for annotations: importing the data module imports torchvision
    from .data import DataSplits

__all__ = [
    "CELL_SCORES",
    "NET_SCORES",
    "SCORES",
    "grad_norm",
    "init_seed",
    "jacob_cov",
    "macs",
    "naswot",
    "param_count",
    "score_cell",
    "snip",
    "synflow",
    "zico",
]

JACOB_COV_EPSILON = 1e-5
"""The ``k`` that keeps ``log`` and ``1 / eigenvalue`` finite in :func:`jacob_cov` (Mellor et
al.'s value)."""


def _logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pre-softmax output: a ChildNet's classifier output, any other module's own output."""
    if not isinstance(net, ChildNet):
        return net(x)
    captured = []
    handle = net.classifier.register_forward_hook(lambda m, i, out: captured.append(out))
    try:
        net(x)
    finally:
        handle.remove()
    return captured[0]


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _fast_layout(net: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    # oneDNN's convolutions run about 1.6x faster forward and backward in channels-last memory
    # on one CPU thread; the values are the same up to rounding.
    if x.dim() != 4:
        return net, x.detach()
    layout = torch.channels_last
    return net.to(memory_format=layout), x.detach().contiguous(memory_format=layout)


def _scoring_copy(net: nn.Module) -> nn.Module:
    """A deep copy in training mode with dropout off (see the module docstring)."""
    clone = copy.deepcopy(net).train()
    for m in clone.modules():
        if isinstance(m, _DropoutNd):
            m.eval()
    return clone


def _positive(out: torch.Tensor) -> torch.Tensor:
    """``out > 0`` as one row per image. The order of units within a row is free (NASWOT's kernel
    does not depend on it), so a channels-last map is read in its memory order, without a copy."""
    positive = out > 0
    if positive.dim() == 4 and positive.is_contiguous(memory_format=torch.channels_last):
        positive = positive.permute(0, 2, 3, 1)
    return positive.reshape(len(out), -1)


class _Probe(NamedTuple):
    """What one pass of a batch through a scoring copy leaves for the scores that share it."""

    weights: list[torch.Tensor]
    gradients: list[list[torch.Tensor]] | None  # [mini-batch][layer], dL/dweight
    codes: torch.Tensor | None  # (N, units) bool: which ReLU units each image switches on
    jacobian: torch.Tensor | None  # (N, pixels): d(sum of logits)/dx per image


def _probe(net: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: int,
           needs: set[str]) -> _Probe:
    """Run ``x`` through a scoring copy of ``net`` in ``splits`` mini-batches and keep ``needs``:
    any of ``"gradients"``, ``"codes"`` and ``"jacobian"``."""
    if isinstance(splits, bool) or not isinstance(splits, int) or not 1 <= splits <= len(x):
        raise ValueError(f"splits={splits!r}; allowed: integers 1 to the batch size {len(x)}")
    net, x = _fast_layout(_scoring_copy(net), x)
    weights = _weights(net)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    if "codes" in needs and not relus:
        raise ValueError(f"naswot hooks nn.ReLU modules and {type(net).__name__} has none")
    layer_codes: list[torch.Tensor] = []
    # The hook keeps ``out > 0``, a copy: ChildNet's ReLUs work in place, and a tensor they
    # return may be overwritten by a later in-place op before the pass ends.
    handles = [m.register_forward_hook(lambda m, i, out: layer_codes.append(_positive(out)))
               for m in relus] if "codes" in needs else []
    gradients, codes, jacobian = [], [], []
    try:
        labels = torch.tensor_split(y, splits) if y is not None else [None] * splits
        for xs, ys in zip(torch.tensor_split(x, splits), labels):
            xs = xs.requires_grad_("jacobian" in needs)
            with torch.set_grad_enabled(bool(needs & {"gradients", "jacobian"})):
                logits = _logits(net, xs)
            if "codes" in needs:
                codes.append(torch.cat(layer_codes, dim=1))
                layer_codes.clear()
            if "gradients" in needs:
                loss = F.cross_entropy(logits, ys)
                gradients.append(list(torch.autograd.grad(loss, weights,
                                                          retain_graph="jacobian" in needs)))
            if "jacobian" in needs:
                (grad_x,) = torch.autograd.grad(logits.sum(), xs)
                jacobian.append(grad_x.reshape(len(xs), -1))
    finally:
        for h in handles:
            h.remove()
    return _Probe(
        weights=[w.detach() for w in weights],
        gradients=gradients or None,
        codes=torch.cat(codes) if codes else None,
        jacobian=torch.cat(jacobian) if jacobian else None,
    )


def _mean_gradients(probe: _Probe) -> list[torch.Tensor]:
    return [torch.stack(layer).mean(0) for layer in zip(*probe.gradients)]


def _snip(probe: _Probe) -> float:
    return float(sum((w * g).abs().sum() for w, g in zip(probe.weights, _mean_gradients(probe))))


def _grad_norm(probe: _Probe) -> float:
    return float(sum(g.norm() for g in _mean_gradients(probe)))


def _naswot(probe: _Probe) -> float:
    units = probe.codes.shape[1]
    # K = c c^T + (1-c)(1-c)^T counts the units two images agree on; expanded, it is
    # units - a_i - a_j + 2 c_i.c_j with a_i = c_i.c_i the units image i switches on: one matrix
    # product instead of two. The counts are integers, exact in float32 below 2^24 units.
    codes = probe.codes.to(torch.float32 if units < 2**24 else torch.float64)
    both_on = (codes @ codes.T).double()
    on = both_on.diagonal()
    kernel = 2 * both_on + units - on[:, None] - on[None, :]
    return float(torch.linalg.slogdet(kernel).logabsdet)


def _jacob_cov(probe: _Probe) -> float:
    corr = torch.corrcoef(probe.jacobian.double())
    if not torch.isfinite(corr).all():
        return float("-inf")  # an image whose logits ignore its pixels: a dead network
    # A correlation matrix's eigenvalues are >= 0; clamping drops rounding below zero.
    eig = torch.linalg.eigvalsh(corr).clamp_min(0) + JACOB_COV_EPSILON
    return float(-(eig.log() + eig.reciprocal()).sum())


def _zico(probe: _Probe) -> float:
    score = 0.0
    for layer in zip(*probe.gradients):
        g = torch.stack(layer).flatten(1).double()  # (mini-batches, weights of the layer)
        # Tensor.std over the leading dimension is ~40x slower than these elementwise ops.
        std = (g - g.mean(dim=0)).square().mean(dim=0).sqrt()
        keep = std > 0
        total = (g.abs().mean(dim=0)[keep] / std[keep]).sum()
        if total > 0:
            score += float(total.log())
    return score


def synflow(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """SynFlow: the synaptic flow through the network, in natural log.

    Tanaka, Kunin, Yamins and Ganguli, "Pruning neural networks without any data by iteratively
    conserving synaptic flow", NeurIPS 2020; as a NAS score in Abdelfattah, Mehrotra, Dudziak
    and Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.

    Every parameter is replaced by its absolute value ``|theta|``, an all-ones image of ``x``'s
    shape goes through the network, and ``R`` is the sum of its logits; the score is the sum
    over the conv and linear weights of ``|theta * dR/dtheta|``. As in Abdelfattah et al.'s
    code, BatchNorm layers are removed (replaced by identities) and the computation is in
    float64; dropout is off. No data is used: ``x`` gives only the image shape, ``y`` is unused.

    The value returned is the natural ``log`` of that sum: the sum grows as a product over the
    layers, and the mean of logs over initialisations is the log of their geometric mean, which
    no one huge initialisation dominates. The log does not change a ranking.
    """
    net = copy.deepcopy(net).eval()
    batchnorms = [(parent, name) for parent in net.modules()
                  for name, child in parent.named_children() if isinstance(child, _BatchNorm)]
    for parent, name in batchnorms:
        setattr(parent, name, nn.Identity())
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = _weights(net)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    grads = torch.autograd.grad(_logits(net, ones).sum(), weights)
    with torch.no_grad():
        return float(sum((w * g).abs().sum() for w, g in zip(weights, grads)).log())


def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: int = 1) -> float:
    """SNIP: connection sensitivity of the loss, summed over the network.

    Lee, Ajanthan and Torr, "SNIP: Single-shot network pruning based on connection
    sensitivity", ICLR 2019; as a NAS score in Abdelfattah et al., ICLR 2021.

    The score is the sum over the conv and linear weights of ``|theta * dL/dtheta|``, with ``L``
    the NLL of the batch (with ``splits > 1``, the gradient is the mean over the mini-batches).
    """
    return _snip(_probe(net, x, y, splits, {"gradients"}))


def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: int = 1) -> float:
    """Gradient norm: how strongly the loss pulls on the initial weights.

    Abdelfattah, Mehrotra, Dudziak and Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.

    The score is the sum over the conv and linear layers of the Euclidean norm of ``dL/dW``,
    with ``L`` the NLL of the batch (with ``splits > 1``, the mean over the mini-batches).
    """
    return _grad_norm(_probe(net, x, y, splits, {"gradients"}))


def naswot(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
           splits: int = 1) -> float:
    """NASWOT: how differently the untrained network's ReLUs switch for different images.

    Mellor, Turner, Storkey and Crowley, "Neural Architecture Search without Training",
    ICML 2021.

    Each image's binary code ``c`` says which ReLU units (of every ``nn.ReLU`` module,
    concatenated) it switches on. With ``K = c c^T + (1 - c)(1 - c)^T`` over the batch (the
    number of units two images agree on), the score is ``log |det K|`` (from ``slogdet``, in
    float64). A batch holding two identical images scores ``-inf``. ``y`` is unused.
    """
    return _naswot(_probe(net, x, y, splits, {"codes"}))


def jacob_cov(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
              splits: int = 1) -> float:
    """Jacobian covariance: how uncorrelated the input gradients of different images are.

    Mellor, Turner, Storkey and Crowley, "Neural Architecture Search without Training", arXiv
    2006.04647v1, 2020 (the first version's score); as a NAS score in Abdelfattah et al.,
    ICLR 2021, whose code this follows.

    ``J`` holds one row per image: the gradient of the sum of the logits with respect to that
    image, flattened. With ``sigma`` the eigenvalues of the correlation matrix of the rows of
    ``J`` and ``k = 1e-5``, the score is ``-sum(log(sigma + k) + 1 / (sigma + k))``, largest when
    the rows are uncorrelated (already higher = better). A row with no variance (a dead network)
    scores ``-inf``. ``y`` is unused.
    """
    return _jacob_cov(_probe(net, x, y, splits, {"jacobian"}))


def zico(net: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: int = 2) -> float:
    """ZiCo: the inverse coefficient of variation of the gradients across mini-batches.

    Li, Yang, Wang and Marculescu, "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
    Gradients", ICLR 2023.

    The batch is split into ``splits`` mini-batches (at least 2) and each conv or linear weight
    gets one gradient of the NLL per mini-batch. For each layer, the sum over its weights of
    ``mean|g| / std(g)`` (over the mini-batches, population standard deviation; weights with zero
    deviation skipped) is taken; the score is the sum over layers of its log (a layer whose sum
    is 0 is skipped, as in the authors' code).
    """
    if isinstance(splits, int) and splits < 2:
        raise ValueError(f"splits={splits!r}; ZiCo compares mini-batches, so it needs at least 2")
    return _zico(_probe(net, x, y, splits, {"gradients"}))


@functools.lru_cache(maxsize=1024)
def _paper_size(cell: SmallCell | LargeCell, in_channels: int, image_size: int) -> dict:
    return network_size(cell, in_channels, image_size)


def param_count(cell: SmallCell | LargeCell, in_channels: int = 1, image_size: int = 28) -> int:
    """Trainable parameters of the paper-size child network of ``cell`` (more = predicted
    better: the size baseline every zero-cost score should beat)."""
    return _paper_size(cell, in_channels, image_size)["trainable_parameters"]


def macs(cell: SmallCell | LargeCell, in_channels: int = 1, image_size: int = 28) -> int:
    """Multiply-accumulates of one image through the paper-size child network of ``cell`` (more
    = predicted better, like :func:`param_count`)."""
    return _paper_size(cell, in_channels, image_size)["flops"]


NET_SCORES: dict[str, Callable[..., float]] = {
    "synflow": synflow,
    "snip": snip,
    "grad_norm": grad_norm,
    "naswot": naswot,
    "jacob_cov": jacob_cov,
    "zico": zico,
}
"""Scores of a network on a batch: ``score(net, x, y) -> float``."""

CELL_SCORES: dict[str, Callable[..., int]] = {"params": param_count, "macs": macs}
"""Scores of a cell alone: ``score(cell, in_channels, image_size)``."""

SCORES: dict[str, Callable] = {**NET_SCORES, **CELL_SCORES}
"""Every score by name, in :func:`score_cell`'s default order."""

# The scores score_cell computes from one shared probe per initialisation, and what each needs.
_FROM_PROBE: dict[str, tuple[Callable[[_Probe], float], str]] = {
    "snip": (_snip, "gradients"),
    "grad_norm": (_grad_norm, "gradients"),
    "naswot": (_naswot, "codes"),
    "jacob_cov": (_jacob_cov, "jacobian"),
    "zico": (_zico, "gradients"),
}


def _check_scores(scores: Sequence[str]) -> list[str]:
    """Return ``scores`` as a list, checking every name against :data:`SCORES`."""
    names = [scores] if isinstance(scores, str) else list(scores)
    unknown = [name for name in names if name not in SCORES]
    if unknown or not names:
        raise ValueError(
            f"unknown zero-cost score {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"allowed: {', '.join(SCORES)}"
        )
    return names


def init_seed(seed: int, init: int) -> int:
    """The torch seed of initialisation ``init`` under ``seed``: independent streams for every
    pair, and the first ``k`` initialisations the same whatever ``inits`` is."""
    return int(np.random.SeedSequence([seed, init]).generate_state(1)[0])


def score_cell(
    cell: SmallCell | LargeCell,
    data: DataSplits,
    scores: Sequence[str] = tuple(SCORES),
    seed: int = 0,
    inits: int = 2,
    batch_size: int = 64,
    filters: tuple[int, int] = (16, 32),
    fc_units: int = 256,
    splits: int = 2,
    timings: dict[str, float] | None = None,
) -> dict[str, float]:
    """Zero-cost scores of ``cell``, each the mean over ``inits`` initialisations.

    :param cell: a :class:`SmallCell` or :class:`LargeCell`.
    :param data: the dataset; the batch is its first ``batch_size`` training images and labels.
    :param scores: names from :data:`SCORES` (default: all of them).
    :param seed: seeds the initialisations (see :func:`init_seed`); same seed, same floats.
    :param inits: how many initialisations to average.
    :param batch_size: images in the batch.
    :param filters: the proxy network's two cell widths (the paper's are ``(64, 128)``).
    :param fc_units: the proxy network's hidden classifier width (the paper's is 4096).
    :param splits: mini-batches of the shared pass (see the module docstring; ZiCo needs 2+).
    :param timings: if given, receives the seconds spent per score (summed over initialisations;
        the shared pass is counted under ``"probe"``).
    :returns: ``{name: score}`` in the order of ``scores``; ``params`` and ``macs`` are those of
        the paper-size network.
    :raises ValueError: on an unknown score name (the message lists the allowed ones).
    """
    names = _check_scores(scores)
    if inits < 1:
        raise ValueError(f"inits={inits!r}; allowed: integers >= 1")
    if "zico" in names and splits < 2:
        raise ValueError(f"splits={splits!r}; ZiCo compares mini-batches, so it needs at least 2")
    x, y = data.train_x[:batch_size], data.train_y[:batch_size]
    in_channels, image_size = x.shape[1], x.shape[-1]
    needs = {_FROM_PROBE[name][1] for name in names if name in _FROM_PROBE}
    clock = timings if timings is not None else {}
    totals = dict.fromkeys((name for name in names if name in NET_SCORES), 0.0)

    def timed(key: str, fn: Callable, *args):
        start = time.perf_counter()
        value = fn(*args)
        clock[key] = clock.get(key, 0.0) + time.perf_counter() - start
        return value

    for init in range(inits):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed(seed, init))
            net = ChildNet(cell, in_channels, image_size, filters=filters, fc_units=fc_units)
        net = net.to(x.device)
        probe = timed("probe", _probe, net, x, y, splits, needs) if needs else None
        for name in totals:
            if name in _FROM_PROBE:
                totals[name] += timed(name, _FROM_PROBE[name][0], probe)
            else:
                totals[name] += timed(name, NET_SCORES[name], net, x, y)
    result = {}
    for name in names:
        if name in CELL_SCORES:
            result[name] = float(timed(name, CELL_SCORES[name], cell, in_channels, image_size))
        else:
            result[name] = totals[name] / inits
    return result
