"""Child networks: the CNN that a cell architecture names, and its exact size and cost.

Structure (the paper's): ``cell(64) - maxpool 2x2 - cell(128) - maxpool 2x2 - fc 4096 - ReLU -
dropout - fc classes - log_softmax``.

Choices the paper leaves open, and why we made them:

- Every convolution op is conv - BatchNorm - ReLU (no conv bias: BN's shift replaces it). BN lets
  the one-epoch ``fast`` protocol train all 64 cells stably at a high learning rate, and ReLU keeps
  two stacked convs from collapsing into one linear map.
- ``conv1x3_3x1`` is a 1x3 conv then a 3x1 conv, with one BN-ReLU after the pair;
  ``sep_conv3x3`` is a 3x3 depthwise conv then a 1x1 pointwise conv, then BN-ReLU.
- Pooling inside a cell is 2x2 with stride 1 and "same" padding (replicate-pad right and bottom by
  one pixel), so it keeps the spatial size and every cell of the space is valid.
- Every op outputs the cell's filter count. Where a pooling or identity op sees a different channel
  count it is preceded by a 1x1 conv - BN projection; convolutions map channels themselves.
- The classifier's dropout rate is 0.5, the usual rate for a wide fully connected layer
  (Hinton et al. 2012, AlexNet), since the paper names none.

Sizes are counted, not estimated: :func:`count_parameters` sums trainable tensors and
:func:`count_flops` runs one forward pass with hooks and counts multiply-accumulates of every
convolution and linear layer (BN, ReLU and pooling are not counted: they hold no MACs).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .protocols import CELL_FILTERS, FC_UNITS
from .spaces import LargeCell, SmallCell

DROPOUT = 0.5


def _conv_bn_relu(*convs: nn.Module, c_out: int) -> nn.Sequential:
    return nn.Sequential(*convs, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _projection(c_in: int, c_out: int) -> nn.Module:
    if c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class SamePool2x2(nn.Module):
    """2x2 pooling with stride 1 that keeps the spatial size (replicate-pad right and bottom)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, stride=1) if kind == "max" else nn.AvgPool2d(2, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, (0, 1, 0, 1), mode="replicate"))


def make_op(name: str, c_in: int, c_out: int) -> nn.Module:
    """Build op ``name`` mapping ``c_in`` channels to ``c_out``, keeping the spatial size."""
    if name == "conv1x3_3x1":
        return _conv_bn_relu(
            nn.Conv2d(c_in, c_out, (1, 3), padding=(0, 1), bias=False),
            nn.Conv2d(c_out, c_out, (3, 1), padding=(1, 0), bias=False),
            c_out=c_out,
        )
    if name in ("conv3x3", "conv5x5", "conv7x7"):
        k = int(name[-1])
        return _conv_bn_relu(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), c_out=c_out)
    if name == "sep_conv3x3":
        return _conv_bn_relu(
            nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            c_out=c_out,
        )
    if name in ("max_pool2x2", "avg_pool2x2"):
        return nn.Sequential(_projection(c_in, c_out), SamePool2x2(name[:3]))
    if name == "identity":
        return _projection(c_in, c_out)
    raise ValueError(f"unknown op {name!r}")


class SmallCellModule(nn.Module):
    """An A_small cell: ``op2(op1(x))``, both ops producing ``c_out`` channels."""

    def __init__(self, cell: SmallCell, c_in: int, c_out: int) -> None:
        super().__init__()
        self.op1 = make_op(cell.op1, c_in, c_out)
        self.op2 = make_op(cell.op2, c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op2(self.op1(x))


class LargeCellModule(nn.Module):
    """An A_large cell. Each op outputs ``c_out`` channels, so a block outputs ``2 * c_out``; the
    cell concatenates the unconsumed block outputs and projects them to ``c_out`` by 1x1 conv-BN."""

    def __init__(self, cell: LargeCell, c_in: int, c_out: int) -> None:
        super().__init__()
        self.cell = cell
        state_channels = [c_in] + [2 * c_out] * cell.num_blocks
        self.ops = nn.ModuleList()
        for blk in cell.blocks:
            self.ops.append(make_op(blk.op1, state_channels[blk.h_a], c_out))
            self.ops.append(make_op(blk.op2, state_channels[blk.h_b], c_out))
        self.outputs = cell.unused_states
        self.project = nn.Sequential(
            nn.Conv2d(2 * c_out * len(self.outputs), c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for b, blk in enumerate(self.cell.blocks):
            left = self.ops[2 * b](states[blk.h_a])
            right = self.ops[2 * b + 1](states[blk.h_b])
            states.append(torch.cat([left, right], dim=1))
        return self.project(torch.cat([states[i] for i in self.outputs], dim=1))


class ChildNet(nn.Module):
    """The paper's child CNN for one cell architecture.

    :param cell: a :class:`SmallCell` or :class:`LargeCell`.
    :param in_channels: image channels (1 for MNIST and Fashion-MNIST).
    :param image_size: image height and width (28); must be divisible by 4.
    :param num_classes: output classes (10).
    :param filters: the two cells' filter counts (the paper's ``(64, 128)``); a cheap training
        protocol may train a narrower proxy of the same architecture.
    :param fc_units: the hidden fully connected layer's width (the paper's 4096).
    """

    def __init__(
        self,
        cell: SmallCell | LargeCell,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        filters: tuple[int, int] = CELL_FILTERS,
        fc_units: int = FC_UNITS,
    ) -> None:
        super().__init__()
        module = SmallCellModule if isinstance(cell, SmallCell) else LargeCellModule
        c1, c2 = filters
        self.cells = nn.ModuleList([module(cell, in_channels, c1), module(cell, c1, c2)])
        flat = c2 * (image_size // 4) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, fc_units),
            nn.ReLU(inplace=True),
            nn.Dropout(DROPOUT),
            nn.Linear(fc_units, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for cell in self.cells:
            x = F.max_pool2d(cell(x), 2)
        return F.log_softmax(self.classifier(x), dim=1)


def count_parameters(module: nn.Module) -> int:
    """Exact number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_flops(net: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> int:
    """Multiply-accumulates of one forward pass of a single image, counted with hooks."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            param = next(net.parameters())
            net(torch.zeros(input_shape, device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return total


def network_size(cell: SmallCell | LargeCell, in_channels: int = 1, image_size: int = 28) -> dict:
    """Parameters (whole net and cells only) and MACs of the paper-size child net for ``cell``.

    The net is built on PyTorch's meta device: shapes without memory or initialisation, so the
    25.7M-parameter classifier is never allocated and no random numbers are drawn.
    """
    with torch.device("meta"):
        net = ChildNet(cell, in_channels=in_channels, image_size=image_size)
    return {
        "trainable_parameters": count_parameters(net),
        "cell_parameters": count_parameters(net.cells),
        "flops": count_flops(net, (1, in_channels, image_size, image_size)),
    }
