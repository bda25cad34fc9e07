"""Reading and summarising the searches ``experiments/search_large.py`` writes.

Each search folder holds ``evaluations.csv``: one row per sampled cell, in order, with its
``reward``, ``arch`` and ``arch_key``, sizes, ``training_time``, and ``repeat`` (the search had
sampled the same cell before, so it cost a cache lookup).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nas_env.spaces import NUM_OPS, OPS, LargeCell, op_index

ITERATION = 20
"""Cells per PPO iteration: the block size of per-iteration statistics."""


def load_searches(runs: Path) -> pd.DataFrame:
    """Every evaluation of every search under ``runs``, with ``search`` (the folder's name)."""
    frames = []
    for path in sorted(runs.glob("*/evaluations.csv")):
        frame = pd.read_csv(path)
        frame["search"] = path.parent.name
        frames.append(frame)
    if not frames:
        raise FileNotFoundError(f"no */evaluations.csv under {runs}; run experiments/search_large.py first")
    return pd.concat(frames, ignore_index=True)


def best_cells(evaluations: pd.DataFrame, top: int, worst: bool = False) -> pd.DataFrame:
    """The ``top`` distinct cells (by canonical key) with the highest reward, best first; with
    ``worst``, those with the lowest, worst first. Ties go to the earlier evaluation."""
    best = (evaluations.sort_values(["reward", "evaluation"], ascending=[worst, True])
            .drop_duplicates("arch_key"))
    return best.head(top).reset_index(drop=True)


def per_iteration(rewards: np.ndarray, size: int = ITERATION) -> pd.DataFrame:
    """Mean, std, min and max of each consecutive block of ``size`` rewards (a last, partial block
    is dropped)."""
    blocks = rewards[: len(rewards) // size * size].reshape(-1, size)
    return pd.DataFrame({"iteration": np.arange(1, len(blocks) + 1), "mean": blocks.mean(1),
                         "std": blocks.std(1), "min": blocks.min(1), "max": blocks.max(1)})


def search_summary(frame: pd.DataFrame, window: int = 100) -> dict:
    """One search's figures: cells ``sampled``; ``distinct`` cells and ``repeats``; the
    ``training_hours`` its distinct cells cost; the mean reward of the first and of the last
    ``window`` cells; the best cell, its reward and the evaluation that found it."""
    best = frame.loc[frame["reward"].idxmax()]
    first = frame[~frame["repeat"]]
    return {"sampled": len(frame), "distinct": len(first), "repeats": int(frame["repeat"].sum()),
            "training_hours": float(first["training_time"].sum() / 3600),
            "mean_first": float(frame["reward"].head(window).mean()),
            "mean_last": float(frame["reward"].tail(window).mean()),
            "best_reward": float(best["reward"]), "best_at": int(best["evaluation"]),
            "best_arch": str(best["arch"])}


def mean_difference(a, b, z: float = 1.96) -> dict:
    """How much the mean of rewards ``a`` exceeds the mean of ``b``: ``difference``, and the
    ``low`` and ``high`` ends of its normal-approximation interval (Welch's standard error times
    ``z``; 1.96 for 95%). The interval treats the rewards as independent draws, which a searcher's
    successive cells are only roughly, so read it as a scale of the noise, not as a test."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 rewards on each side, got {len(a)} and {len(b)}")
    difference = a.mean() - b.mean()
    error = z * np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return {"difference": float(difference), "low": float(difference - error),
            "high": float(difference + error)}


def op_counts(archs) -> pd.Series:
    """How often each op of ``OPS`` is chosen in ``archs`` (A_large string forms), pooled over
    every block and both op slots, indexed by op name in ``OPS`` order."""
    counts = np.zeros(NUM_OPS, dtype=int)
    for arch in archs:
        for block in LargeCell.from_string(arch).blocks:
            counts[op_index(block.op1)] += 1
            counts[op_index(block.op2)] += 1
    return pd.Series(counts, index=list(OPS))


def op_entropy(archs) -> float:
    """The entropy in nats of the ops chosen in ``archs`` (A_large string forms), pooled over
    every block and both op slots: ``log(8)`` = 2.079 when all 8 ops are equally frequent. A
    finite sample of uniform choices scores a little less, the more so the smaller it is, so
    compare a searcher with random search's figure over as many cells, not with log(8)."""
    counts = op_counts(archs).to_numpy()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
