"""How two A_small reward tables agree: rank correlations and where one table's cells rank on
the other (e.g. MNIST against Fashion-MNIST, or the ``cheap`` protocol against ``fast``).

Every comparison is over the cells' mean rewards (the mean over a table's training seeds), in the
space's index order, so a cell is compared with itself.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau, spearmanr

from ..rewards import Reward
from ..spaces import SmallCell
from .reward_table import RewardTable


def best_cells(values: np.ndarray, top: int) -> np.ndarray:
    """The indices of the ``top`` cells with the highest ``values``, best first (ties in index
    order): the subset the ``*_top{top}`` figures of :func:`rank_agreement` use."""
    return np.argsort(-np.asarray(values, dtype=float), kind="stable")[:top]


def rank_agreement(values: np.ndarray, reference: np.ndarray, top: int = 16) -> dict:
    """Spearman's rho and Kendall's tau between two value vectors over all cells, and over the
    ``top`` cells of ``reference`` (its best, by value).

    :param values: one value per cell, in the same order as ``reference``.
    :param reference: one value per cell.
    :param top: how many of the reference's best cells the ``*_top{top}`` figures use.
    :returns: ``{"spearman", "kendall", "spearman_top{top}", "kendall_top{top}"}`` as floats.
    :raises ValueError: if the vectors differ in length or ``top`` is not in ``[2, len]``.
    """
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if values.shape != reference.shape or values.ndim != 1:
        raise ValueError(f"values and reference need the same 1-d shape; got {values.shape} "
                         f"and {reference.shape}")
    if not 2 <= top <= len(reference):
        raise ValueError(f"top must be between 2 and {len(reference)} (the number of cells); "
                         f"got {top}")
    best = best_cells(reference, top)
    return {
        "spearman": float(spearmanr(values, reference)[0]),
        "kendall": float(kendalltau(values, reference)[0]),
        f"spearman_top{top}": float(spearmanr(values[best], reference[best])[0]),
        f"kendall_top{top}": float(kendalltau(values[best], reference[best])[0]),
    }


def rank_of(values: np.ndarray, index: int) -> int:
    """The 1-based rank of cell ``index`` by ``values`` (1 = best): one plus the number of cells
    with a strictly higher value, so tied cells share a rank."""
    values = np.asarray(values, dtype=float)
    return int((values > values[index]).sum()) + 1


def compare_tables(a: RewardTable, b: RewardTable, reward: Reward | None = None,
                   top: int = 16) -> dict:
    """Compare two A_small tables cell by cell under one reward.

    :param a: the first table (e.g. MNIST).
    :param b: the second table (e.g. Fashion-MNIST).
    :param reward: the reward both tables are ranked by (default: r_val, the mean validation
        accuracy).
    :param top: the size of the top-cell subsets for the ``*_top`` correlations.
    :returns: ``{"all": rank_agreement(b, a), "top_of_a": ..., "top_of_b": ..., "optimum_a":
        {arch, rank_on_a, rank_on_b}, "optimum_b": {...}}``; ``top_of_a`` ranks over a's best
        ``top`` cells, ``top_of_b`` over b's.
    """
    reward = reward or Reward.from_keywords("val")
    va, vb = a.rewards(reward), b.rewards(reward)
    on_a, on_b = rank_agreement(vb, va, top), rank_agreement(va, vb, top)
    return {
        "reward": reward.kind,
        "spearman": on_a["spearman"],
        "kendall": on_a["kendall"],
        f"spearman_top{top}_of_a": on_a[f"spearman_top{top}"],
        f"kendall_top{top}_of_a": on_a[f"kendall_top{top}"],
        f"spearman_top{top}_of_b": on_b[f"spearman_top{top}"],
        f"kendall_top{top}_of_b": on_b[f"kendall_top{top}"],
        "optimum_a": cell_ranks(a, b, int(np.argmax(va)), reward),
        "optimum_b": cell_ranks(a, b, int(np.argmax(vb)), reward),
    }


def cell_ranks(a: RewardTable, b: RewardTable, arch: SmallCell | str | int,
               reward: Reward | None = None) -> dict:
    """Where one cell stands on both tables: ``{arch, cell, reward_a, reward_b, rank_on_a,
    rank_on_b}`` (ranks 1-based, ties share a rank)."""
    reward = reward or Reward.from_keywords("val")
    index = RewardTable.cell_index(arch)
    va, vb = a.rewards(reward), b.rewards(reward)
    cell = SmallCell.from_index(index)
    return {"arch": cell.to_string(), "cell": cell.paper_name(),
            "reward_a": float(va[index]), "reward_b": float(vb[index]),
            "rank_on_a": rank_of(va, index), "rank_on_b": rank_of(vb, index)}
