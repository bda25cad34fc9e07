"""Query a reward table: what training gave each A_small cell, without training it again.

Load a table
------------
A reward table is the CSV that :mod:`nas_env.table_builder` writes, one row per (cell, training
seed), with a JSON sidecar recording the protocol. :func:`table_path` finds a table shipped with
the package (it works from an installed wheel too)::

    from nas_env.benchmark import RewardTable, table_path

    table = RewardTable(table_path("mnist", "fast"))   # or RewardTable("my/table.csv")

Loading checks the whole table: a missing file, missing columns, bad values or a table that does
not cover all 64 cells of A_small raise an error that names the file and what is wrong.

Query one architecture
----------------------
Name the cell as a :class:`~nas_env.spaces.SmallCell`, its string form, its index
(``8 * op1 + op2``) or the env's action vector ``[op1, op2]``::

    from nas_env.spaces import SmallCell

    cell = SmallCell("conv3x3", "max_pool2x2")
    table.query(cell)                                 # mean over the training seeds
    table.query("|conv3x3~0|+|max_pool2x2~1|", seed_mode="sample", rng=0)   # one seed's row
    table.query([1, 5]) == table.query(13) == table.query(cell)

A query returns a plain dict, the :class:`~nas_env.results.EvalResult` that a live training run
returns too:

``arch`` (string form), ``arch_key``, ``arch_index``, ``seed`` (the row's training seed; ``None``
for a mean), ``num_seeds``, ``validation_accuracy`` and ``test_accuracy`` (percent),
``val_curve`` (the validation accuracy at each checkpoint; for a mean, the mean curve),
``training_time`` (seconds), ``trainable_parameters`` (whole network), ``cell_parameters`` (the two
cells only), ``flops`` (multiply-accumulates per image), ``latency_ms`` (CPU inference of one
image; NaN where the builder did not measure it), ``diverged`` and ``failure``, ``source``
(``"table"``), the sidecar's ``dataset`` and ``protocol``, ``fidelity`` (1.0), and the row's
``device`` and ``precision``.

``seed_mode="sample"`` picks one of the cell's training seeds uniformly with a numpy
``Generator`` (``rng``), as NAS benchmarks do to expose seed noise to the searcher.

Many architectures at once
--------------------------
``table.query_batch(actions)`` takes an ``(N, 2)`` integer array of actions and returns a dict of
length-``N`` numpy arrays (pure fancy indexing into per-cell arrays)::

    out = table.query_batch(np.array([[1, 5], [0, 0]]))
    out["validation_accuracy"], out["cell_parameters"]

Rewards and the best architecture
---------------------------------
:class:`Reward` is the searcher's reward: ``"val"`` (validation accuracy in percent) or the
paper's budgeted ``"param"`` (``-100`` when the budget metric is at least the budget, else the
validation accuracy). The envs and :meth:`RewardTable.best` share it::

    table.best("val")                                  # the highest mean validation accuracy
    table.best("param")                                # ... among cells with < 150,000 cell params
    table.best("param", budget_metric="flops", budget=50e6)

Test accuracy is reported, never rewarded.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .results import RESULT_DEFAULTS
from .spaces import NUM_OPS, InvalidArchitectureError, SmallCell

TABLE_COLUMNS = (
    "arch", "arch_index", "seed", "validation_accuracy", "test_accuracy", "val_curve",
    "training_time", "trainable_parameters", "cell_parameters", "flops", "latency_ms",
    "diverged", "device", "precision",
)
"""A reward table's columns, in order (the builder writes them; querying needs no torch)."""

NUM_CELLS = NUM_OPS**2

INT_METRICS = ("trainable_parameters", "cell_parameters", "flops")
REWARD_TOLERANCE = 1e-4
"""How far two rewards may differ and still be equal: SB3 stores rewards as float32 (about 1e-5
resolution near 100). The one tolerance the project compares rewards with."""
MAX_INT = 2**53
"""The largest integer a table column may hold (every integer up to it is exact as a float)."""
FLOAT_METRICS = ("validation_accuracy", "test_accuracy", "training_time", "latency_ms")
METRICS = FLOAT_METRICS + INT_METRICS
"""The numeric results a query returns."""

SEED_MODES = ("mean", "sample")
REWARDS = ("val", "param")
BUDGET_SCOPES = {"cells": "cell_parameters", "network": "trainable_parameters"}
BUDGET_METRICS = ("cell_parameters", "trainable_parameters", "flops", "latency_ms", "training_time")
DEFAULT_BUDGETS = {"cell_parameters": 150_000}
"""The paper's ``n``: 150,000 parameters in the two cells. Other metrics have no default."""
R_PARAM_PENALTY = -100.0


class RewardTableError(ValueError):
    """A reward table that cannot be used: malformed, inconsistent or incomplete."""


def _allowed(name: str, value: Any, allowed: Sequence[str]) -> ValueError:
    return ValueError(f"{name}={value!r} is not allowed; choose one of: "
                      + ", ".join(repr(a) for a in allowed))


def check_seed_mode(seed_mode: str) -> str:
    if seed_mode not in SEED_MODES:
        raise _allowed("seed_mode", seed_mode, SEED_MODES)
    return seed_mode


def user_table_dir() -> Path:
    """Where tables a user builds go: ``$XDG_DATA_HOME/nas_env/reward_tables``, else
    ``~/.local/share/nas_env/reward_tables`` (never inside the installed package)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "nas_env" / "reward_tables"


def table_path(dataset: str = "mnist", protocol: str = "fast", space: str = "small") -> Path:
    """The path of the table for ``space``, ``dataset`` and ``protocol``: the one shipped with
    the package, else one built into :func:`user_table_dir`.

    The shipped tables are found through ``importlib.resources``, so this works from an installed
    wheel as from a checkout.

    :raises FileNotFoundError: if there is no such table; the message lists those there are.
    """
    name = f"{space}_{dataset}_{protocol}.csv"
    folder = Path(str(importlib.resources.files("reward_tables")))
    for path in (folder / name, user_table_dir() / name):
        if path.is_file():
            return path
    shipped = sorted(p.name for p in folder.glob("*.csv"))
    raise FileNotFoundError(
        f"no reward table for space={space!r}, dataset={dataset!r}, protocol={protocol!r} "
        f"(looked for {folder / name} and {user_table_dir() / name}); shipped tables: "
        f"{', '.join(shipped) or 'none'}. Build one with experiments/build_reward_table.py "
        "(it writes into the second folder), or pass a table's path as table_path."
    )


@dataclass(frozen=True)
class Reward:
    """A searcher's reward computed from a table's results.

    :param kind: ``"val"``: the validation accuracy in percent; ``"param"``: the paper's r_param,
        :data:`R_PARAM_PENALTY` (-100) when ``budget_metric`` is at least ``budget``, else the
        validation accuracy.
    :param budget_metric: the table column the budget limits (one of :data:`BUDGET_METRICS`).
    :param budget: the budget ``n``; a cell meets it when its metric is strictly below it.

    Build one from the envs' keywords with :meth:`from_keywords`.
    """

    kind: str = "val"
    budget_metric: str = "cell_parameters"
    budget: float = DEFAULT_BUDGETS["cell_parameters"]

    def __post_init__(self) -> None:
        if self.kind not in REWARDS:
            raise _allowed("reward", self.kind, REWARDS)
        if self.budget_metric not in BUDGET_METRICS:
            raise _allowed("budget_metric", self.budget_metric, BUDGET_METRICS)
        budget = self.budget
        if isinstance(budget, bool) or not isinstance(budget, (int, float, np.number)) \
                or not math.isfinite(budget) or budget <= 0:
            raise ValueError(f"budget={budget!r} is not allowed; choose a finite number > 0")

    @classmethod
    def from_keywords(
        cls,
        reward: str = "val",
        budget_scope: str | None = None,
        budget_metric: str | None = None,
        budget: float | None = None,
    ) -> "Reward":
        """The reward the envs' keywords name.

        :param reward: ``"val"`` or ``"param"``.
        :param budget_scope: ``"cells"`` (the default: the two cells' parameters, column
            ``cell_parameters``) or ``"network"`` (the whole network, ``trainable_parameters``).
        :param budget_metric: any column of :data:`BUDGET_METRICS` (e.g. ``"flops"``,
            ``"latency_ms"``, ``"training_time"``); an alternative to ``budget_scope``.
        :param budget: the budget ``n``; defaults to 150,000 for ``cell_parameters`` and must be
            given for every other metric.
        """
        if reward not in REWARDS:
            raise _allowed("reward", reward, REWARDS)
        if budget_scope is not None and budget_scope not in BUDGET_SCOPES:
            raise _allowed("budget_scope", budget_scope, tuple(BUDGET_SCOPES))
        if budget_metric is not None and budget_metric not in BUDGET_METRICS:
            raise _allowed("budget_metric", budget_metric, BUDGET_METRICS)
        if budget_scope is not None and budget_metric is not None \
                and BUDGET_SCOPES[budget_scope] != budget_metric:
            raise ValueError(
                f"budget_scope={budget_scope!r} limits {BUDGET_SCOPES[budget_scope]!r} but "
                f"budget_metric={budget_metric!r} was also given; pass only one of them."
            )
        metric = budget_metric or BUDGET_SCOPES[budget_scope or "cells"]
        if budget is None:
            if metric not in DEFAULT_BUDGETS:
                raise ValueError(
                    f"{metric!r} has no default budget; pass budget=... in the metric's units "
                    f"(only {', '.join(DEFAULT_BUDGETS)} has a default)."
                )
            budget = DEFAULT_BUDGETS[metric]
        return cls(reward, metric, budget)

    def budget_met(self, budget_value):
        """Whether ``budget_value`` (a number or an array) is strictly below the budget."""
        return budget_value < self.budget

    def __call__(self, validation_accuracy, budget_value):
        """The reward for a cell (numbers) or many cells (arrays) with these results."""
        if isinstance(budget_value, np.ndarray):
            penalised = budget_value >= self.budget if self.kind == "param" \
                else np.zeros(budget_value.shape, dtype=bool)
            return np.where(penalised, R_PARAM_PENALTY, validation_accuracy).astype(np.float64)
        if self.kind == "param" and not budget_value < self.budget:
            return R_PARAM_PENALTY
        return float(validation_accuracy)


def _ranges(indices: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    parts: list[str] = []
    for i in sorted(indices):
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def _rows(mask: pd.Series) -> str:
    """The CSV line numbers (header is line 1) of the rows where ``mask`` holds, at most five."""
    lines = [int(i) + 2 for i in np.flatnonzero(mask.to_numpy())]
    return ", ".join(map(str, lines[:5])) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")


SIDECAR_KEYS = ("dataset", "protocol")
"""What a sidecar must record: what the table's numbers are of."""


def _read_sidecar(csv_path: Path) -> dict:
    path = csv_path.with_suffix(".json")
    if not path.exists():
        raise RewardTableError(
            f"reward table {csv_path} has no sidecar {path}: the JSON file that records the "
            "dataset and training protocol of its numbers (the builder writes it with the first "
            "row)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RewardTableError(f"sidecar {path} of reward table {csv_path} is not JSON: {e}") from None
    if not isinstance(meta, dict):
        raise RewardTableError(f"sidecar {path} of reward table {csv_path} is not a JSON object")
    missing = [k for k in SIDECAR_KEYS if k not in meta]
    if not isinstance(meta.get("protocol", {}), dict) or "name" not in meta.get("protocol", {}):
        missing.append("protocol.name")
    if missing:
        raise RewardTableError(f"sidecar {path} of reward table {csv_path} lacks "
                               f"{', '.join(missing)}")
    if meta.get("space", "small") != "small":
        raise RewardTableError(
            f"sidecar {path} says space={meta['space']!r}; RewardTable reads A_small tables only"
        )
    return meta


def _read_and_check(path: Path) -> pd.DataFrame:
    """Read the CSV at ``path`` and check every value; return it sorted by (cell, seed)."""
    if not path.is_file():
        raise FileNotFoundError(f"reward table {path} does not exist")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise RewardTableError(f"reward table {path} is not a readable CSV: {e}") from None

    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise RewardTableError(f"reward table {path} lacks the columns {', '.join(missing)}; "
                               f"a table has: {', '.join(TABLE_COLUMNS)}")
    if df.empty:
        raise RewardTableError(f"reward table {path} has no rows")

    for col in ("arch_index", "seed") + METRICS:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna()
        if col == "latency_ms":  # an unmeasured latency is an empty field; text is still an error
            bad &= df[col].notna()
        if bad.any():
            raise RewardTableError(f"reward table {path}: column {col} is not numeric on "
                                   f"line(s) {_rows(bad)}")
        df[col] = values
    for col in ("arch_index", "seed") + METRICS:
        bad = np.isinf(df[col])
        if bad.any():
            raise RewardTableError(f"reward table {path}: column {col} must be finite; "
                                   f"line(s) {_rows(bad)} are not")
    for col in ("arch_index", "seed") + INT_METRICS:
        bad = (df[col] != df[col].round()) | (df[col] < 0) | (df[col] > MAX_INT)
        if bad.any():
            raise RewardTableError(f"reward table {path}: column {col} must hold integers from 0 "
                                   f"to 2**53; line(s) {_rows(bad)} do not")
        df[col] = df[col].astype(np.int64)
    for col in ("validation_accuracy", "test_accuracy"):
        bad = ~df[col].between(0.0, 100.0)
        if bad.any():
            raise RewardTableError(f"reward table {path}: {col} must be a percentage in [0, 100]; "
                                   f"line(s) {_rows(bad)} are not")
    for col in ("training_time", "latency_ms"):
        bad = df[col] < 0
        if bad.any():
            raise RewardTableError(f"reward table {path}: {col} must be >= 0; "
                                   f"line(s) {_rows(bad)} are not")

    for col in ("device", "precision"):
        bad = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if bad.any():
            raise RewardTableError(f"reward table {path}: {col} is empty on line(s) {_rows(bad)}; "
                                   "every row records what trained it")

    cells: dict[str, SmallCell] = {}
    for text in df["arch"].unique():
        try:
            cells[text] = SmallCell.from_string(str(text))
        except InvalidArchitectureError as e:
            raise RewardTableError(
                f"reward table {path}: arch {text!r} is not an A_small cell ({e})") from None
    canonical = df["arch"].map(lambda t: cells[t].index)
    bad = canonical != df["arch_index"]
    if bad.any():
        raise RewardTableError(f"reward table {path}: arch_index disagrees with arch "
                               f"(8 * op1 + op2) on line(s) {_rows(bad)}")
    bad = df.duplicated(["arch_index", "seed"], keep=False)
    if bad.any():
        raise RewardTableError(f"reward table {path}: (arch, seed) repeats on line(s) {_rows(bad)}")
    df["diverged"] = df["diverged"].map(
        lambda v: {"true": True, "false": False}.get(str(v).strip().lower(), None))
    bad = df["diverged"].isna()
    if bad.any():
        raise RewardTableError(f"reward table {path}: diverged must be True or False; "
                               f"line(s) {_rows(bad)} are not")
    df["diverged"] = df["diverged"].astype(bool)
    for col in INT_METRICS:
        varies = df.groupby("arch_index")[col].nunique() > 1
        if varies.any():
            archs = ", ".join(SmallCell.from_index(int(i)).to_string() for i in varies[varies].index[:3])
            raise RewardTableError(f"reward table {path}: {col} differs between the seeds of {archs}; "
                                   "the network's size does not depend on the seed")

    present = set(df["arch_index"].tolist())
    absent = [i for i in range(NUM_CELLS) if i not in present]
    if absent:
        names = ", ".join(SmallCell.from_index(i).to_string() for i in absent[:3])
        raise RewardTableError(
            f"reward table {path} is incomplete: it covers {NUM_CELLS - len(absent)} of the "
            f"{NUM_CELLS} A_small cells; {len(absent)} missing (indices {_ranges(absent)}; e.g. "
            f"{names}{', ...' if len(absent) > 3 else ''}). Finish the build with "
            "experiments/build_reward_table.py or use a complete table."
        )
    return df.sort_values(["arch_index", "seed"], ignore_index=True)


def _read_curve(path: Path, text: Any) -> tuple[tuple[float, float], ...]:
    """A row's ``val_curve``; tuples, since every query shares the table's records' curves."""
    try:
        curve = json.loads(text)
        return tuple((float(epoch), float(acc)) for epoch, acc in curve)
    except (TypeError, ValueError) as e:
        raise RewardTableError(f"reward table {path}: val_curve {text!r} is not a JSON list of "
                               f"[epoch, validation_accuracy] pairs ({e})") from None


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
        self._df = _read_and_check(self.path)
        self.meta: dict = _read_sidecar(self.path)

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
        self.per_seed: dict[str, np.ndarray] = {col: by_seed(col) for col in METRICS + ("diverged",)}
        self.mean: dict[str, np.ndarray] = {
            col: _frozen(np.array([g[col].mean() for g in groups],
                                  dtype=np.int64 if col in INT_METRICS else np.float64))
            for col in METRICS
        }
        self.mean["diverged"] = _frozen(np.array([g["diverged"].any() for g in groups]))

        meta = self.meta or {}
        common = {"source": "table", "dataset": meta.get("dataset"),
                  "protocol": (meta.get("protocol") or {}).get("name"), "fidelity": 1.0}
        curves = [[_read_curve(self.path, text) for text in g["val_curve"]] for g in groups]
        self.checkpoints: tuple[float, ...] = _common_checkpoints(curves)
        """The epochs at which every row of the table recorded a validation accuracy."""
        cells = list(SmallCell.all())
        keys = METRICS + ("diverged",)

        def record(i: int, seed, values: dict, curve: tuple, row=None) -> dict:
            where = groups[i].iloc[row if row is not None else 0]
            return {"arch": cells[i].to_string(), "arch_key": cells[i].key, "arch_index": i,
                    "seed": seed, "num_seeds": int(self.num_seeds[i]),
                    **{k: _python(values[k]) for k in keys}, "val_curve": curve,
                    "latency_ms": _measured(values["latency_ms"]),
                    "failure": "diverged" if values["diverged"] else None, **common,
                    "device": str(where["device"]), "precision": str(where["precision"]),
                    **RESULT_DEFAULTS}

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
            raise _allowed("metric", metric, METRICS)
        missing = np.flatnonzero(np.isnan(self.mean[metric].astype(np.float64)))
        if missing.size:
            raise RewardTableError(
                f"reward table {self.path} has no {metric} for cells {_ranges(missing.tolist())}; "
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
                raise _allowed("metric", metric, tuple(self.mean))
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
        """The mean-over-seeds reward of every cell, in index order (length 64)."""
        self.check_metric(reward.budget_metric)
        return reward(self.mean["validation_accuracy"], self.mean[reward.budget_metric])

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
        the spread (max - min) of their validation accuracies; 0.0 for a one-seed table."""
        spreads = [np.max(row[:n]) - np.min(row[:n])
                   for row, n in zip(self.per_seed["validation_accuracy"], self.num_seeds) if n > 1]
        return float(np.median(spreads)) if spreads else 0.0

    def optimum(self, reward: str | Reward = "val", **budget_keywords) -> "Optimum":
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


@dataclass(frozen=True)
class Optimum:
    """A table's best cell under one reward, and the cells that tie with it within seed noise.

    :param arch: the best cell's string form.
    :param reward: its mean reward.
    :param noise: the table's seed noise (:meth:`RewardTable.seed_noise`).
    :param near: every cell whose mean reward is at least ``reward - noise``, best first (the
        best cell included): cells a search cannot be blamed for preferring.
    """

    arch: str
    reward: float
    noise: float
    near: tuple[str, ...]

    def is_best(self, arch: str) -> bool:
        return arch == self.arch

    def is_near(self, arch: str) -> bool:
        return arch in self.near


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int, allow_partial: bool) -> RewardTable:
    return RewardTable(path, allow_partial)


def load_table(path: str | os.PathLike, allow_partial: bool = False) -> RewardTable:
    """A :class:`RewardTable` for ``path``, shared between callers while the file is unchanged.

    Every env made by ``gym.make`` or ``gym.make_vec`` would otherwise parse the CSV again. The
    table's arrays are read-only, so sharing it is safe.
    """
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"reward table {path} does not exist") from None
    return _load_cached(str(resolved), stat.st_mtime_ns, stat.st_size, bool(allow_partial))
