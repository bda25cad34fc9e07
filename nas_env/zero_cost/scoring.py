"""Every score by name, and :func:`score_cell`: a cell's scores averaged over initialisations.

:func:`score_cell` computes the probe-based scores from one shared pass per initialisation
(:func:`~nas_env.zero_cost.probe.run_probe`), with exactly the values the single-score functions
give with the same ``splits``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from ..child_net import ChildNet
from ..spaces import LargeCell, SmallCell
from .activations import jacob_cov, jacob_cov_from_probe, meco, naswot, naswot_from_probe
from .gradients import (grad_norm, grad_norm_from_probe, snip, snip_from_probe, synflow, zico,
                        zico_from_probe)
from .probe import Probe, run_probe
from .size import macs, param_count

if TYPE_CHECKING:  # only for annotations: importing the data module imports torchvision
    from ..data import DataSplits


NET_SCORES: dict[str, Callable[..., float]] = {
    "synflow": synflow,
    "snip": snip,
    "grad_norm": grad_norm,
    "naswot": naswot,
    "jacob_cov": jacob_cov,
    "zico": zico,
    "meco": meco,
}
"""Scores of a network on a batch: ``score(net, x, y) -> float``."""

CELL_SCORES: dict[str, Callable[..., int]] = {"params": param_count, "macs": macs}
"""Scores of a cell alone: ``score(cell, in_channels, image_size)``."""

SCORES: dict[str, Callable] = {**NET_SCORES, **CELL_SCORES}
"""Every score by name, in :func:`score_cell`'s default order."""

# The scores score_cell computes from one shared probe per initialisation, and what each needs.
_FROM_PROBE: dict[str, tuple[Callable[[Probe], float], str]] = {
    "snip": (snip_from_probe, "gradients"),
    "grad_norm": (grad_norm_from_probe, "gradients"),
    "naswot": (naswot_from_probe, "codes"),
    "jacob_cov": (jacob_cov_from_probe, "jacobian"),
    "zico": (zico_from_probe, "gradients"),
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
    :param splits: mini-batches of the shared pass (see :mod:`nas_env.zero_cost`; ZiCo needs 2+).
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
        probe = timed("probe", run_probe, net, x, y, splits, needs) if needs else None
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
