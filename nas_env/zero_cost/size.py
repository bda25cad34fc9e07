"""Size baselines: the paper-size child network's parameters and multiply-accumulates.

These score a cell, not a network on a batch: ``score(cell, in_channels, image_size)``. More is
predicted better; every zero-cost score should beat them.
"""

from __future__ import annotations

import functools

from ..child_net import network_size
from ..spaces import LargeCell, SmallCell


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

