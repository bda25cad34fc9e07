"""Statistics of searches that scripts and tests share.

Every judgement is by cell identity, never by a reward value (a lucky seed of a runner-up can
score above the optimum's mean):

- **first hit**: the first evaluation that sampled one of a set of cells (the table's best cell,
  or any cell within the table's seed noise of it; see
  :meth:`nas_env.tables.reward_table.RewardTable.optimum`);
- **convergence** (:func:`lasting_convergence`): the first iteration from which, to the end of the
  run, every batch is at least 90% one and the same cell. One definition for every searcher: a
  PPO iteration is its batch of 20 samples, and any other searcher's evaluations are cut into
  consecutive batches of the same size.

Also: what uniform random search needs in theory, and percentiles of "evaluations until the first
hit" where a search that never hit counts as more than its budget.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Collection, Sequence

import numpy as np

QUARTILES = (25, 50, 75)
CONVERGED_SHARE = 0.9
"""A batch has converged on a cell when at least this share of its samples are that cell."""


def first_hit(archs: Sequence[str], targets: Collection[str]) -> int | None:
    """The 1-based number of the first of ``archs`` that is in ``targets``; ``None`` if none is."""
    targets = set(targets)
    return next((i + 1 for i, arch in enumerate(archs) if arch in targets), None)


def batch_mode(batch: Sequence[str]) -> tuple[str, float]:
    """The most frequent cell of ``batch`` (the first seen among ties) and its share."""
    counts = Counter(batch)
    arch = max(counts, key=lambda a: (counts[a], -batch.index(a)))
    return arch, counts[arch] / len(batch)


def lasting_convergence(archs: Sequence[str], batch_size: int,
                        share: float = CONVERGED_SHARE) -> tuple[int | None, str | None]:
    """The iteration (1-based batch number) from which every batch to the end is at least
    ``share`` one cell, the same cell in all of them, and that cell; ``(None, None)`` if the last
    batch is not. A partial last batch is ignored."""
    batches = [list(archs[i:i + batch_size])
               for i in range(0, len(archs) - batch_size + 1, batch_size)]
    if not batches:
        return None, None
    cell, top = batch_mode(batches[-1])
    if top < share:
        return None, None
    start = len(batches)
    while start > 1 and batches[start - 2].count(cell) / batch_size >= share:
        start -= 1
    return start, cell


def random_search_theory(size: int, optima: int, budget: int, replace: bool) -> dict[str, float]:
    """Evaluations until uniform random search first finds one of ``optima`` cells among ``size``.

    :returns: ``mean`` (with unlimited budget: ``size / optima`` with replacement,
        ``(size + 1) / (optima + 1)`` without), the quartiles ``q25``, ``q50``, ``q75`` (the
        smallest ``t`` with ``P(T <= t) >= q``) and ``p_never``, ``P(T > budget)``.
    """
    def survival(t: int) -> float:  # P(T > t)
        if replace:
            return (1 - optima / size) ** t
        return math.prod((size - optima - i) / (size - i) for i in range(min(t, size - optima + 1)))

    horizon = math.ceil(math.log(0.25) / math.log(1 - optima / size)) if replace and optima < size else size
    quartiles = {f"q{q}": next(t for t in range(1, horizon + 1) if 1 - survival(t) >= q / 100)
                 for q in QUARTILES}
    mean = size / optima if replace else (size + 1) / (optima + 1)
    return {"mean": mean, **quartiles, "p_never": survival(budget)}


def censored_percentile(values: np.ndarray, percent: float) -> float:
    """numpy's default (linear) percentile, where ``inf`` stands for "more than the budget".

    Interpolating towards an ``inf`` gives ``inf``; numpy's own would give NaN where the weight
    on the ``inf`` is zero.
    """
    ordered = np.sort(values)
    position = percent / 100 * (len(ordered) - 1)
    lo, hi = math.floor(position), math.ceil(position)
    if lo == hi or np.isinf(ordered[hi]):
        return float(ordered[hi])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo))
