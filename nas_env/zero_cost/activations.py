"""Scores from the untrained network's activations: how it tells images apart (NASWOT, Jacobian
covariance) and how redundant the channels of its feature maps are (MeCo).

Each ``score(net, x, y) -> float`` works on a scoring copy (:mod:`nas_env.zero_cost.probe`);
higher means predicted better, and ``y`` is unused. The ``*_from_probe`` forms compute a score
from a shared :class:`~nas_env.zero_cost.probe.Probe`, as
:func:`~nas_env.zero_cost.scoring.score_cell` does.
"""

from __future__ import annotations

import torch
from torch import nn

from .probe import Probe, fast_layout, run_probe, scoring_copy

JACOB_COV_EPSILON = 1e-5
"""The ``k`` that keeps ``log`` and ``1 / eigenvalue`` finite in :func:`jacob_cov` (Mellor et
al.'s value)."""


def naswot_from_probe(probe: Probe) -> float:
    """NASWOT from a probe that kept ``"codes"`` (see :func:`naswot`)."""
    units = probe.codes.shape[1]
    # K = c c^T + (1-c)(1-c)^T counts the units two images agree on; expanded, it is
    # units - a_i - a_j + 2 c_i.c_j with a_i = c_i.c_i the units image i switches on: one matrix
    # product instead of two. The counts are integers, exact in float32 below 2^24 units.
    codes = probe.codes.to(torch.float32 if units < 2**24 else torch.float64)
    both_on = (codes @ codes.T).double()
    on = both_on.diagonal()
    kernel = 2 * both_on + units - on[:, None] - on[None, :]
    return float(torch.linalg.slogdet(kernel).logabsdet)


def jacob_cov_from_probe(probe: Probe) -> float:
    """The Jacobian covariance from a probe that kept ``"jacobian"`` (see :func:`jacob_cov`)."""
    corr = torch.corrcoef(probe.jacobian.double())
    if not torch.isfinite(corr).all():
        return float("-inf")  # an image whose logits ignore its pixels: a dead network
    # A correlation matrix's eigenvalues are >= 0; clamping drops rounding below zero.
    eig = torch.linalg.eigvalsh(corr).clamp_min(0) + JACOB_COV_EPSILON
    return float(-(eig.log() + eig.reciprocal()).sum())



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
    return naswot_from_probe(run_probe(net, x, y, splits, {"codes"}))


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
    return jacob_cov_from_probe(run_probe(net, x, y, splits, {"jacobian"}))


def meco(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """MeCo: how far from redundant the channels of every feature map are, for one image.

    Jiang, Wang and Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
    Eigenvalue of Correlation", NeurIPS 2023.

    One forward pass of the first image of ``x`` through a scoring copy. For every module whose
    output is a feature map ``(1, C, H, W)`` (containers included, as in the reference code,
    which hooks every module), the ``C x C`` Pearson correlation matrix of its channels (each
    channel's ``H * W`` values a variable) is formed, entries that are NaN or infinite (a
    constant channel) set to 0, and its smallest eigenvalue taken; the score is their sum, in
    float64. A larger smallest eigenvalue means no channel is close to a combination of the
    others. Outputs that are not feature maps (the classifier's) add nothing. ``y`` is unused.
    """
    net, x = fast_layout(scoring_copy(net), x[:1])
    smallest: list[float] = []

    def hook(module: nn.Module, inputs, out) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[1] < 2:
            return
        channels = out[0].detach().double().reshape(out.shape[1], -1)
        corr = torch.corrcoef(channels)
        corr = torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))
        smallest.append(float(torch.linalg.eigvalsh(corr)[0]))

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return float(sum(smallest))
