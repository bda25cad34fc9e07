"""One pass of a batch through a scoring copy of a network, shared by the scores that need it.

The conventions of :mod:`nas_env.zero_cost` live here: a score works on a deep copy in training
mode with dropout off (:func:`scoring_copy`), reads the pre-softmax logits (:func:`logits`), and
counts the weights of ``nn.Conv2d`` and ``nn.Linear`` layers (:func:`conv_linear_weights`).
:func:`run_probe` runs the batch once, in ``splits`` mini-batches, and keeps what the scores asked
for: the loss's gradients, the ReLU codes, the input Jacobian.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from ..child_net import ChildNet


def logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
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


def conv_linear_weights(net: nn.Module) -> list[torch.Tensor]:
    """The weights the scores count: those of ``nn.Conv2d`` and ``nn.Linear`` layers."""
    return [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def fast_layout(net: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    # oneDNN's convolutions run about 1.6x faster forward and backward in channels-last memory
    # on one CPU thread; the values are the same up to rounding.
    if x.dim() != 4:
        return net, x.detach()
    layout = torch.channels_last
    return net.to(memory_format=layout), x.detach().contiguous(memory_format=layout)


def scoring_copy(net: nn.Module) -> nn.Module:
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


class Probe(NamedTuple):
    """What one pass of a batch through a scoring copy leaves for the scores that share it."""

    weights: list[torch.Tensor]
    gradients: list[list[torch.Tensor]] | None  # [mini-batch][layer], dL/dweight
    codes: torch.Tensor | None  # (N, units) bool: which ReLU units each image switches on
    jacobian: torch.Tensor | None  # (N, pixels): d(sum of logits)/dx per image


def run_probe(net: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: int,
              needs: set[str]) -> Probe:
    """Run ``x`` through a scoring copy of ``net`` in ``splits`` mini-batches and keep ``needs``:
    any of ``"gradients"``, ``"codes"`` and ``"jacobian"``."""
    if isinstance(splits, bool) or not isinstance(splits, int) or not 1 <= splits <= len(x):
        raise ValueError(f"splits={splits!r}; allowed: integers 1 to the batch size {len(x)}")
    net, x = fast_layout(scoring_copy(net), x)
    weights = conv_linear_weights(net)
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
                out = logits(net, xs)
            if "codes" in needs:
                codes.append(torch.cat(layer_codes, dim=1))
                layer_codes.clear()
            if "gradients" in needs:
                loss = F.cross_entropy(out, ys)
                gradients.append(list(torch.autograd.grad(loss, weights,
                                                          retain_graph="jacobian" in needs)))
            if "jacobian" in needs:
                (grad_x,) = torch.autograd.grad(out.sum(), xs)
                jacobian.append(grad_x.reshape(len(xs), -1))
    finally:
        for h in handles:
            h.remove()
    return Probe(
        weights=[w.detach() for w in weights],
        gradients=gradients or None,
        codes=torch.cat(codes) if codes else None,
        jacobian=torch.cat(jacobian) if jacobian else None,
    )


def mean_gradients(probe: Probe) -> list[torch.Tensor]:
    """Each layer's loss gradient, averaged over the probe's mini-batches."""
    return [torch.stack(layer).mean(0) for layer in zip(*probe.gradients)]
