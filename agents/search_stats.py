"""Statistics of searches that scripts and tests share: what random search needs in theory, and
percentiles of "evaluations until the first hit" where a search that never hit counts as more than
its budget."""

from __future__ import annotations

import math

import numpy as np

QUARTILES = (25, 50, 75)


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
