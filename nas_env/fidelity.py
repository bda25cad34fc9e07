"""How well a cheap reward ranks cells like an expensive one: rank statistics and score combiners.

A candidate reward (a cheaper training protocol, the summed training loss of a short run, a
training-free score) is judged by how it orders cells whose reference accuracy is known (the
shipped ``fast`` tables, an A_large reference set). :func:`rank_fidelity` gives the figures
``docs/fidelity.md`` reports; :func:`rank_average` and :class:`RankModel` combine several scores
into one.

    from nas_env.fidelity import rank_fidelity

    rank_fidelity(candidate_values, reference_accuracies)
    # {"cells": 64, "spearman": 0.71, "spearman_ci": [0.55, 0.82], "kendall": ...,
    #  "kendall_ci": [...], "kendall_top16": ..., "top10pct_overlap": 0.43}
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import kendalltau, rankdata, spearmanr


def _vectors(values, reference) -> tuple[np.ndarray, np.ndarray]:
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if values.shape != reference.shape or values.ndim != 1:
        raise ValueError(f"values and reference need the same 1-d shape; got {values.shape} "
                         f"and {reference.shape}")
    if not np.isfinite(reference).all():
        raise ValueError("reference holds a value that is not finite; drop that cell first")
    return values, reference


def _ranked(values: np.ndarray) -> np.ndarray:
    """Values with -inf / NaN (a score that failed) placed below every finite value."""
    finite = np.isfinite(values)
    if finite.all():
        return values
    low = values[finite].min() - 1.0 if finite.any() else 0.0
    return np.where(finite, values, low)


def top_overlap(values, reference, fraction: float = 0.1) -> float:
    """The share of the reference's best ``ceil(fraction * n)`` cells that are also among the
    values' best as many (ties broken by index)."""
    values, reference = _vectors(values, reference)
    k = max(1, math.ceil(fraction * len(reference)))
    best_values = set(np.argsort(-_ranked(values), kind="stable")[:k])
    best_reference = set(np.argsort(-reference, kind="stable")[:k])
    return len(best_values & best_reference) / k


def rank_fidelity(values, reference, top: int = 16, top_fraction: float = 0.1,
                  resamples: int = 2000, seed: int = 0) -> dict:
    """Rank agreement of ``values`` (higher = predicted better) with ``reference`` (higher =
    better), cell by cell.

    :param values: one value per cell.
    :param reference: one value per cell, in the same order.
    :param top: Kendall's tau is also given over the reference's best ``top`` cells.
    :param top_fraction: the share of best cells whose overlap is given.
    :param resamples: bootstrap resamples (cells drawn with replacement) for the 95% intervals.
    :param seed: seeds the bootstrap.
    :returns: ``cells``, ``spearman`` and ``kendall`` over all cells with their percentile
        bootstrap intervals ``spearman_ci`` and ``kendall_ci``, ``kendall_top{top}``, and
        ``top{pct}pct_overlap``.
    """
    values, reference = _vectors(values, reference)
    values = _ranked(values)
    n = len(reference)
    if not 2 <= top <= n:
        raise ValueError(f"top must be between 2 and {n} (the number of cells); got {top}")
    rng = np.random.default_rng(seed)
    boot_s, boot_k = [], []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        if np.ptp(values[idx]) == 0 or np.ptp(reference[idx]) == 0:
            continue
        boot_s.append(spearmanr(values[idx], reference[idx])[0])
        boot_k.append(kendalltau(values[idx], reference[idx])[0])
    best = np.argsort(-reference, kind="stable")[:top]
    return {
        "cells": n,
        "spearman": float(spearmanr(values, reference)[0]),
        "spearman_ci": [float(q) for q in np.nanpercentile(boot_s, [2.5, 97.5])],
        "kendall": float(kendalltau(values, reference)[0]),
        "kendall_ci": [float(q) for q in np.nanpercentile(boot_k, [2.5, 97.5])],
        f"kendall_top{top}": float(kendalltau(values[best], reference[best])[0]),
        f"top{round(100 * top_fraction)}pct_overlap": top_overlap(values, reference, top_fraction),
    }


def spearman_text(figures: dict | None, cells: bool = False) -> str:
    """``rank_fidelity``'s Spearman with its interval as the docs' tables print it,
    ``"0.67 [-0.23, 0.92]"`` (with ``cells``: ``"... (8)"``, the number of cells); ``"n/a"`` for
    no figures."""
    if not figures:
        return "n/a"
    lo, hi = figures["spearman_ci"]
    text = f"{figures['spearman']:.2f} [{lo:.2f}, {hi:.2f}]"
    return f"{text} ({figures['cells']})" if cells else text


def normalised_ranks(values) -> np.ndarray:
    """Ranks of ``values`` scaled to [0, 1] (ties share their mean rank; failed scores lowest)."""
    values = _ranked(np.asarray(values, dtype=float))
    if len(values) < 2:
        return np.zeros(len(values))
    return (rankdata(values) - 1) / (len(values) - 1)


def rank_average(scores: Mapping[str, Sequence[float]]) -> np.ndarray:
    """The mean over ``scores`` of each cell's normalised rank: a vote in which every score
    counts the same (Abdelfattah et al., ICLR 2021, vote over zero-cost proxies)."""
    if not scores:
        raise ValueError("rank_average needs at least one score")
    return np.mean([normalised_ranks(v) for v in scores.values()], axis=0)


class RankModel:
    """A least-squares line from the normalised ranks of several scores to the normalised rank
    of the reference accuracy, fitted on one set of cells and applied to another (ranks, not
    values, so that a score's scale on one dataset does not matter on the other).

    :param names: the scores it combines, in order.
    :param weights: one weight per score, then the intercept.
    """

    def __init__(self, names: Sequence[str], weights: Sequence[float]) -> None:
        self.names, self.weights = list(names), np.asarray(weights, dtype=float)
        if len(self.weights) != len(self.names) + 1:
            raise ValueError(f"{len(self.names)} scores need {len(self.names) + 1} weights "
                             f"(one each, then the intercept); got {len(self.weights)}")

    @classmethod
    def fit(cls, scores: Mapping[str, Sequence[float]], reference: Sequence[float]) -> "RankModel":
        names = list(scores)
        features = np.column_stack([normalised_ranks(scores[k]) for k in names]
                                   + [np.ones(len(reference))])
        weights, *_ = np.linalg.lstsq(features, normalised_ranks(reference), rcond=None)
        return cls(names, weights)

    def predict(self, scores: Mapping[str, Sequence[float]]) -> np.ndarray:
        missing = [k for k in self.names if k not in scores]
        if missing:
            raise ValueError(f"the model needs the scores {missing}; got {sorted(scores)}")
        features = np.column_stack([normalised_ranks(scores[k]) for k in self.names])
        return features @ self.weights[:-1] + self.weights[-1]

    def as_dict(self) -> dict:
        return {"names": self.names, "weights": [float(w) for w in self.weights]}

    def __repr__(self) -> str:
        terms = " + ".join(f"{w:.3f}*{k}" for k, w in zip(self.names, self.weights))
        return f"RankModel({terms} + {self.weights[-1]:.3f})"
