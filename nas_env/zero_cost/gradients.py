"""Scores from the gradients with respect to the weights: SynFlow, SNIP, gradient norm and ZiCo.

Each ``score(net, x, y) -> float`` works on a scoring copy (:mod:`nas_env.zero_cost.probe`);
higher means predicted better. The ``*_from_probe`` forms compute a score from a shared
:class:`~nas_env.zero_cost.probe.Probe`, as :func:`~nas_env.zero_cost.scoring.score_cell` does.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .probe import Probe, conv_linear_weights, logits, mean_gradients, run_probe


def snip_from_probe(probe: Probe) -> float:
    """SNIP from a probe that kept ``"gradients"`` (see :func:`snip`)."""
    return float(sum((w * g).abs().sum() for w, g in zip(probe.weights, mean_gradients(probe))))


def grad_norm_from_probe(probe: Probe) -> float:
    """The gradient norm from a probe that kept ``"gradients"`` (see :func:`grad_norm`)."""
    return float(sum(g.norm() for g in mean_gradients(probe)))


def zico_from_probe(probe: Probe) -> float:
    """ZiCo from a probe that kept ``"gradients"`` (see :func:`zico`)."""
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
    weights = conv_linear_weights(net)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    grads = torch.autograd.grad(logits(net, ones).sum(), weights)
    with torch.no_grad():
        return float(sum((w * g).abs().sum() for w, g in zip(weights, grads)).log())


def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: int = 1) -> float:
    """SNIP: connection sensitivity of the loss, summed over the network.

    Lee, Ajanthan and Torr, "SNIP: Single-shot network pruning based on connection
    sensitivity", ICLR 2019; as a NAS score in Abdelfattah et al., ICLR 2021.

    The score is the sum over the conv and linear weights of ``|theta * dL/dtheta|``, with ``L``
    the NLL of the batch (with ``splits > 1``, the gradient is the mean over the mini-batches).
    """
    return snip_from_probe(run_probe(net, x, y, splits, {"gradients"}))


def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: int = 1) -> float:
    """Gradient norm: how strongly the loss pulls on the initial weights.

    Abdelfattah, Mehrotra, Dudziak and Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.

    The score is the sum over the conv and linear layers of the Euclidean norm of ``dL/dW``,
    with ``L`` the NLL of the batch (with ``splits > 1``, the mean over the mini-batches).
    """
    return grad_norm_from_probe(run_probe(net, x, y, splits, {"gradients"}))


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
    return zico_from_probe(run_probe(net, x, y, splits, {"gradients"}))
