"""How well a cheap reward ranks cells like an expensive one: rank statistics and score combiners.

A candidate reward (a cheaper training protocol, the summed training loss of a short run, a
training-free score) is judged by how it orders cells whose reference accuracy is known (the
shipped ``fast`` tables, an A_large reference set). :func:`rank_fidelity` gives the figures
``docs/fidelity/`` reports; :func:`noise_free_spearman` splits a shortfall into the part more
training seeds would remove and the part they would not; :func:`rank_average` and
:class:`RankModel` combine several scores into one.

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


def seed_reliability(agreement: float, seeds: int) -> float:
    """The Spearman-Brown prophecy: how reliable the mean of ``seeds`` runs is when two single
    runs agree at ``agreement`` (their correlation), ``k r / (1 + (k - 1) r)``."""
    if seeds < 1:
        raise ValueError(f"seeds={seeds!r}; allowed: an integer >= 1")
    return seeds * agreement / (1 + (seeds - 1) * agreement)


def _mean_pairwise_spearman(runs: np.ndarray) -> float:
    pairs = [spearmanr(runs[i], runs[j])[0]
             for i in range(len(runs)) for j in range(i + 1, len(runs))]
    return float(np.mean(pairs))


def _disattenuated(candidate: np.ndarray, reference: np.ndarray) -> tuple[float, ...]:
    """``(candidate agreement, reference agreement, Spearman of the means, noise-free Spearman)``
    for runs of shape ``(seeds, cells)``."""
    r_c, r_f = _mean_pairwise_spearman(candidate), _mean_pairwise_spearman(reference)
    observed = float(spearmanr(candidate.mean(axis=0), reference.mean(axis=0))[0])
    if not (r_c > 0 and r_f > 0):
        return r_c, r_f, observed, math.nan
    reliability = seed_reliability(r_c, len(candidate)) * seed_reliability(r_f, len(reference))
    return r_c, r_f, observed, observed / math.sqrt(reliability)


def noise_free_spearman(candidate_runs, reference_runs, resamples: int = 2000,
                        seed: int = 0) -> dict:
    """How well a candidate would rank the cells if neither it nor the reference had seed noise:
    Spearman's correction for attenuation (Spearman 1904), with each side's reliability taken
    from how its own training seeds agree and the Spearman-Brown prophecy for the mean of its
    seeds (:func:`seed_reliability`).

    The observed Spearman of the two seed means is divided by ``sqrt(R_candidate *
    R_reference)``. A candidate whose noise-free figure is below a goal cannot reach the goal by
    averaging more of its own seeds: what is left is its bias. The correction is an estimate
    (it assumes seed noise independent of the cell's true rank and can exceed 1 on few cells);
    the interval is a percentile bootstrap over cells.

    :param candidate_runs: the candidate's values, shape ``(seeds, cells)``, at least two seeds.
    :param reference_runs: the reference's values, shape ``(seeds, cells)``, at least two seeds,
        cells in the same order.
    :param resamples: bootstrap resamples of the cells.
    :param seed: seeds the bootstrap.
    :returns: ``cells``, ``candidate_seeds``, ``reference_seeds``, ``candidate_agreement`` and
        ``reference_agreement`` (mean Spearman between two seeds), ``spearman`` (of the seed
        means), ``noise_free`` and its 95% interval ``noise_free_ci``; the noise-free figure is
        NaN where either side's seeds do not agree positively.
    """
    candidate = np.asarray(candidate_runs, dtype=float)
    reference = np.asarray(reference_runs, dtype=float)
    if candidate.ndim != 2 or reference.ndim != 2 or candidate.shape[1] != reference.shape[1]:
        raise ValueError(f"runs need shape (seeds, cells) with the same cells; got "
                         f"{candidate.shape} and {reference.shape}")
    if len(candidate) < 2 or len(reference) < 2:
        raise ValueError(f"each side needs at least two seeds to measure its own agreement; got "
                         f"{len(candidate)} (candidate) and {len(reference)} (reference)")
    if not (np.isfinite(candidate).all() and np.isfinite(reference).all()):
        raise ValueError("a run holds a value that is not finite; drop that cell first")
    r_c, r_f, observed, corrected = _disattenuated(candidate, reference)
    n = candidate.shape[1]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        spreads = np.concatenate([np.ptp(candidate[:, idx], axis=1),
                                  np.ptp(reference[:, idx], axis=1)])
        if spreads.min() == 0:
            continue  # a resample in which a run is constant has no Spearman
        boot.append(_disattenuated(candidate[:, idx], reference[:, idx])[3])
    boot = [b for b in boot if math.isfinite(b)]
    return {
        "cells": n, "candidate_seeds": len(candidate), "reference_seeds": len(reference),
        "candidate_agreement": r_c, "reference_agreement": r_f, "spearman": observed,
        "noise_free": corrected,
        "noise_free_ci": ([float(q) for q in np.percentile(boot, [2.5, 97.5])] if boot
                          else [math.nan, math.nan]),
    }


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
