"""Query a reward table: each A_small cell's results, as a record or as arrays.

:class:`RewardTable` reads a table (checked by :mod:`nas_env.tables.schema`), indexes it by cell
and seed, and answers :meth:`~RewardTable.query` (one cell, one
:class:`~nas_env.results.EvalResult`), :meth:`~RewardTable.query_batch` (many cells, numpy
arrays), the best cell under a :class:`~nas_env.rewards.Reward` and the cells within seed noise of
it (:class:`~nas_env.rewards.Optimum`). The tutorial is in :mod:`nas_env.tables`.
"""

from __future__ import annotations

import math
import operator
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..keywords import check_seed_mode, not_allowed
from ..results import RESULT_DEFAULTS
from ..rewards import REWARD_TOLERANCE, Optimum, Reward
from ..spaces import NUM_OPS, InvalidArchitectureError, SmallCell
from .schema import (INT_METRICS, METRICS, NUM_CELLS, SCORE_COLUMN, RewardTableError, index_ranges,
                     read_curve, read_rows, read_sidecar, reward_column)


def _common_checkpoints(curves: list) -> tuple[float, ...]:
    """The epochs present in every curve of the table."""
    sets = [{epoch for epoch, _ in curve} for cell in curves for curve in cell]
    return tuple(sorted(set.intersection(*sets))) if sets else ()


def _mean_curve(curves: list, checkpoints: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """The mean over seeds of each curve's accuracy at ``checkpoints``."""
    by_epoch = [dict(curve) for curve in curves]
    return tuple((epoch, float(np.mean([c[epoch] for c in by_epoch]))) for epoch in checkpoints)


def _python(value: Any) -> Any:
    """A numpy scalar as the matching Python scalar (infos and query results hold plain values)."""
    return value.item() if isinstance(value, np.generic) else value


def _measured(value: Any) -> float | None:
    """A figure as a Python float, ``None`` where the table left it unmeasured (NaN)."""
    value = float(value)
    return None if math.isnan(value) else value


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


class RewardTable:
    """The results of a reward table, checked and indexed for fast queries.

    :param path: the table's CSV. Its JSON sidecar (same stem), if present, is read into
        :attr:`meta`.
    :param allow_partial: load a table whose cells have different numbers of training seeds (a
        build in progress adds seeds cell by cell); each cell's mean is then over the seeds it
        has, and every record's ``num_seeds`` says how many. Off by default: such a table mixes
        one-seed and two-seed means.
    :raises FileNotFoundError: if the CSV does not exist.
    :raises RewardTableError: if the table or its sidecar is missing, malformed, does not cover
        all 64 cells, or (unless ``allow_partial``) gives its cells different seed counts.
    """

    def __init__(self, path: str | os.PathLike, allow_partial: bool = False) -> None:
        self.path = Path(path)
        self._df = read_rows(self.path)
        self.meta: dict = read_sidecar(self.path)
        self.reward_key: str = reward_column(self.meta)
        """The column the table's reward is read from: ``"validation_accuracy"``, or ``"score"``
        for a protocol read by its late training loss."""
        if self.reward_key not in self._df.columns:
            raise RewardTableError(
                f"reward table {self.path} has no {self.reward_key} column, which its sidecar's "
                f"protocol {self.meta['protocol']['name']!r} is rewarded by")
        metrics = METRICS + ((SCORE_COLUMN,) if SCORE_COLUMN in self._df.columns else ())

        groups = [g for _, g in self._df.groupby("arch_index", sort=True)]
        self.num_seeds = _frozen(np.array([len(g) for g in groups], dtype=np.int64))
        width = int(self.num_seeds.max())
        # Per-seed arrays are (cells, max seeds); a cell with fewer seeds repeats its first row in
        # the unused slots, which sampling never picks.
        slots = [list(range(len(g))) + [0] * (width - len(g)) for g in groups]
        self._same_seed_count = bool((self.num_seeds == width).all())
        if not self._same_seed_count and not allow_partial:
            counts = np.unique(self.num_seeds, return_counts=True)
            spread = ", ".join(f"{c} with {n} seed{'s' * int(n != 1)}" for n, c in zip(*counts))
            raise RewardTableError(
                f"reward table {self.path} gives its cells different numbers of training seeds "
                f"({spread}): a build in progress. Finish it, or pass allow_partial=True "
                "(allow_partial_table=True to an env) to use each cell's seeds as they are.")

        def by_seed(col: str) -> np.ndarray:
            return _frozen(np.stack([g[col].to_numpy()[s] for g, s in zip(groups, slots)]))

        self.seeds = by_seed("seed")
        self.per_seed: dict[str, np.ndarray] = {col: by_seed(col) for col in metrics + ("diverged",)}
        self.mean: dict[str, np.ndarray] = {
            col: _frozen(np.array([g[col].mean() for g in groups],
                                  dtype=np.int64 if col in INT_METRICS else np.float64))
            for col in metrics
        }
        self.mean["diverged"] = _frozen(np.array([g["diverged"].any() for g in groups]))

        meta = self.meta or {}
        common = {"source": "table", "dataset": meta.get("dataset"),
                  "protocol": (meta.get("protocol") or {}).get("name"), "fidelity": 1.0}
        curves = [[read_curve(self.path, text) for text in g["val_curve"]] for g in groups]
        self.checkpoints: tuple[float, ...] = _common_checkpoints(curves)
        """The epochs at which every row of the table recorded a validation accuracy."""
        cells = list(SmallCell.all())
        keys = metrics + ("diverged",)

        def record(i: int, seed, values: dict, curve: tuple, row=None) -> dict:
            where = groups[i].iloc[row if row is not None else 0]
            out = {"arch": cells[i].to_string(), "arch_key": cells[i].key, "arch_index": i,
                   "seed": seed, "num_seeds": int(self.num_seeds[i]),
                   **{k: _python(values[k]) for k in keys}, "val_curve": curve,
                   "latency_ms": _measured(values["latency_ms"]),
                   "failure": "diverged" if values["diverged"] else None, **common,
                   "device": str(where["device"]), "precision": str(where["precision"]),
                   **RESULT_DEFAULTS}
            if SCORE_COLUMN in values:
                out[SCORE_COLUMN] = _python(values[SCORE_COLUMN])
            return out

        self._mean_records = [
            record(i, None, {k: self.mean[k][i] for k in keys}, _mean_curve(curves[i], self.checkpoints))
            for i in range(NUM_CELLS)
        ]
        self._seed_records = [
            [record(i, int(self.seeds[i, j]), {k: self.per_seed[k][i, j] for k in keys},
                    curves[i][j], row=j)
             for j in range(int(self.num_seeds[i]))]
            for i in range(NUM_CELLS)
        ]

    @property
    def df(self) -> pd.DataFrame:
        """The table as a DataFrame (a copy), one row per (cell, seed), sorted by cell and seed."""
        return self._df.copy()

    def __repr__(self) -> str:
        return f"RewardTable({str(self.path)!r}, rows={len(self._df)})"

    def check_metric(self, metric: str) -> None:
        """Raise unless every cell has a value of ``metric`` (``latency_ms`` may be unmeasured)."""
        if metric not in METRICS:
            raise not_allowed("metric", metric, METRICS)
        missing = np.flatnonzero(np.isnan(self.mean[metric].astype(np.float64)))
        if missing.size:
            raise RewardTableError(
                f"reward table {self.path} has no {metric} for cells "
                f"{index_ranges(missing.tolist())}; "
                "choose another budget metric or a table that records it"
            )

    @staticmethod
    def cell_index(arch: SmallCell | str | int | Sequence[int]) -> int:
        """The index of ``arch``: a SmallCell, its string form, its index or an action ``[op1, op2]``."""
        if isinstance(arch, SmallCell):
            return arch.index
        if isinstance(arch, str):
            return SmallCell.from_string(arch).index
        if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
            return SmallCell.from_index(operator.index(arch)).index
        try:
            return SmallCell.from_action(arch).index
        except TypeError:
            raise InvalidArchitectureError(
                f"{arch!r} names no A_small cell; pass a SmallCell, a string like "
                f"|conv3x3~0|+|max_pool2x2~1|, an index 0 to {NUM_CELLS - 1} or an action [op1, op2]"
            ) from None

    def lookup(self, index: int, seed_mode: str = "mean",
               rng: np.random.Generator | None = None) -> dict:
        """:meth:`query` for a valid cell ``index`` without checking it: the envs' fast path.

        ``seed_mode="sample"`` draws one ``rng.random()``, so a query consumes the same random
        numbers as the batch query of one action; without an ``rng``, from a fresh unseeded one.
        """
        if seed_mode == "mean":
            return dict(self._mean_records[index])
        rng = rng if rng is not None else np.random.default_rng()
        rows = self._seed_records[index]
        return dict(rows[int(rng.random() * len(rows))])

    def query(
        self,
        arch: SmallCell | str | int | Sequence[int],
        seed_mode: str = "mean",
        rng: np.random.Generator | int | None = None,
    ) -> dict:
        """The results of one architecture.

        :param arch: a :class:`SmallCell`, its string form, its index or its action ``[op1, op2]``.
        :param seed_mode: ``"mean"`` (average over the cell's seeds) or ``"sample"`` (one seed's
            row, drawn uniformly).
        :param rng: for ``"sample"``: a numpy ``Generator`` or an int seed (``None``: unseeded).
        :returns: a dict with the keys listed in the module docstring.
        :raises InvalidArchitectureError: if ``arch`` is not an A_small cell.
        """
        check_seed_mode(seed_mode)
        return self.lookup(self.cell_index(arch), seed_mode, np.random.default_rng(rng))

    def query_batch(
        self,
        actions: np.ndarray,
        seed_mode: str = "mean",
        rng: np.random.Generator | int | None = None,
        metrics: Sequence[str] = METRICS,
    ) -> dict[str, np.ndarray]:
        """The results of many architectures, as arrays.

        :param actions: integers of shape ``(N, 2)``: one action ``[op1, op2]`` per row.
        :param seed_mode: as in :meth:`query`; ``"sample"`` draws ``rng.random(N)``.
        :param rng: as in :meth:`query`.
        :param metrics: the metrics to return (default: all of :data:`METRICS`).
        :returns: ``arch_index`` and ``seed`` (``"sample"`` only) and one array per metric, each of
            length ``N``.
        """
        check_seed_mode(seed_mode)
        for metric in metrics:
            if metric not in self.mean:
                raise not_allowed("metric", metric, tuple(self.mean))
        actions = np.asarray(actions)
        if actions.ndim != 2 or actions.shape[1] != 2 or not np.issubdtype(actions.dtype, np.integer):
            raise InvalidArchitectureError(
                f"actions of shape {actions.shape} and dtype {actions.dtype}; expected integers "
                "of shape (N, 2), one [op1, op2] per row"
            )
        index = actions[:, 0] * NUM_OPS + actions[:, 1]
        if actions.size and (actions.min() < 0 or actions.max() >= NUM_OPS):
            bad = np.flatnonzero(((actions < 0) | (actions >= NUM_OPS)).any(axis=1))
            raise InvalidArchitectureError(
                f"actions row {bad[0]} is {actions[bad[0]].tolist()} ({bad.size} bad rows); "
                f"allowed: integers 0 to {NUM_OPS - 1} in both columns"
            )
        out: dict[str, np.ndarray] = {"arch_index": index}
        if seed_mode == "mean":
            out.update((m, np.take(self.mean[m], index)) for m in metrics)
            return out
        # The same draw as lookup(): slot = floor(u * seeds of the cell), u = rng.random().
        width = self.seeds.shape[1]
        counts = width if self._same_seed_count else np.take(self.num_seeds, index)
        draws = np.random.default_rng(rng).random(index.shape[0])
        flat = index * width + (draws * counts).astype(np.intp)
        out["seed"] = np.take(self.seeds.ravel(), flat)
        out.update((m, np.take(self.per_seed[m].ravel(), flat)) for m in metrics)
        return out

    def rewards(self, reward: Reward) -> np.ndarray:
        """The mean-over-seeds reward of every cell, in index order (length 64), computed from
        :attr:`reward_key`."""
        self.check_metric(reward.budget_metric)
        return reward(self.mean[self.reward_key], self.mean[reward.budget_metric])

    def best(
        self,
        reward: str | Reward = "val",
        *,
        budget_scope: str | None = None,
        budget_metric: str | None = None,
        budget: float | None = None,
    ) -> dict:
        """The cell with the highest mean reward (the lowest index among ties).

        :param reward: a :class:`Reward`, or ``"val"`` / ``"param"`` with the budget keywords of
            :meth:`Reward.from_keywords`.
        :returns: its :meth:`query` result (seed mean) plus ``reward``.
        :raises ValueError: for ``"param"`` when no cell meets the budget.
        """
        if not isinstance(reward, Reward):
            reward = Reward.from_keywords(reward, budget_scope, budget_metric, budget)
        elif (budget_scope, budget_metric, budget) != (None, None, None):
            raise ValueError("pass the budget inside the Reward or as keywords, not both")
        values = self.rewards(reward)
        if reward.kind == "param" and not reward.budget_met(self.mean[reward.budget_metric]).any():
            raise ValueError(
                f"no cell of {self.path} has {reward.budget_metric} < {reward.budget:g}; the "
                f"smallest is {self.mean[reward.budget_metric].min():g}. Choose a larger budget."
            )
        index = int(np.argmax(values))
        return {**self.lookup(index), "reward": float(values[index])}

    def seed_noise(self) -> float:
        """The table's seed noise: the median, over the cells trained with more than one seed, of
        the spread (max - min) of their rewarded column (:attr:`reward_key`); 0.0 for a one-seed
        table."""
        spreads = [np.max(row[:n]) - np.min(row[:n])
                   for row, n in zip(self.per_seed[self.reward_key], self.num_seeds) if n > 1]
        return float(np.median(spreads)) if spreads else 0.0

    def optimum(self, reward: str | Reward = "val", **budget_keywords) -> Optimum:
        """The best cell under ``reward`` and the cells within :meth:`seed_noise` of it: how a
        search's hits and convergence are judged (by cell, never by a reward value).

        :param reward: as in :meth:`best` (with its budget keywords).
        """
        best = self.best(reward, **budget_keywords)
        reward_fn = reward if isinstance(reward, Reward) else Reward.from_keywords(
            reward, **budget_keywords)
        values = self.rewards(reward_fn)
        noise = self.seed_noise()
        cells = list(SmallCell.all())
        near = [cells[i].to_string() for i in np.argsort(-values, kind="stable")
                if values[i] >= best["reward"] - noise - REWARD_TOLERANCE]
        return Optimum(best["arch"], float(best["reward"]), noise, tuple(near))
