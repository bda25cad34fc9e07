"""What a reward table file is: its columns, its sidecar, and the checks a table must pass.

A reward table is a CSV with the columns :data:`TABLE_COLUMNS`, one row per (cell, training
seed), and a JSON sidecar of the same stem that records the dataset and training protocol of its
numbers (:data:`SIDECAR_KEYS`). :func:`read_rows` and :func:`read_sidecar` read them and check
every value; each error names the file, the line and what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..protocols import REWARD_KEYS
from ..spaces import NUM_OPS, InvalidArchitectureError, SmallCell

TABLE_COLUMNS = (
    "arch", "arch_index", "seed", "validation_accuracy", "test_accuracy", "val_curve",
    "training_time", "trainable_parameters", "cell_parameters", "flops", "latency_ms",
    "diverged", "device", "precision",
)
"""A reward table's columns, in order (the builder writes them; querying needs no torch)."""

SCORE_COLUMN = "score"
"""An optional column, after :data:`TABLE_COLUMNS`: each run's ``score``, for a protocol read by
something other than its validation accuracy (``signal="late_loss"``: ``100 * exp(-L)``), whose
table is rewarded by it (:func:`reward_column`)."""

NUM_CELLS = NUM_OPS**2

INT_METRICS = ("trainable_parameters", "cell_parameters", "flops")
MAX_INT = 2**53
"""The largest integer a table column may hold (every integer up to it is exact as a float)."""
FLOAT_METRICS = ("validation_accuracy", "test_accuracy", "training_time", "latency_ms")
METRICS = FLOAT_METRICS + INT_METRICS
"""The numeric results a query returns."""


class RewardTableError(ValueError):
    """A reward table that cannot be used: malformed, inconsistent or incomplete."""


def index_ranges(indices: Sequence[int]) -> str:
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


def columns_of(signal: str) -> tuple[str, ...]:
    """The columns of a table of a protocol read by ``signal``: :data:`TABLE_COLUMNS`, and
    :data:`SCORE_COLUMN` after them where the signal's reward key is not among them."""
    return TABLE_COLUMNS + (() if REWARD_KEYS[signal] in TABLE_COLUMNS else (REWARD_KEYS[signal],))


def reward_column(meta: dict) -> str:
    """The column a table's reward is read from: its sidecar protocol's reward key
    (:data:`nas_env.protocols.REWARD_KEYS`)."""
    return REWARD_KEYS[(meta.get("protocol") or {}).get("signal", "validation_accuracy")]


SIDECAR_KEYS = ("dataset", "protocol")
"""What a sidecar must record: what the table's numbers are of."""


def read_sidecar(csv_path: Path) -> dict:
    """The JSON sidecar of the table at ``csv_path``, checked to record :data:`SIDECAR_KEYS` and
    the protocol's name, and to be of A_small."""
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


def read_rows(path: Path, complete: bool = True) -> pd.DataFrame:
    """Read the CSV at ``path`` and check every value; return it sorted by (cell, seed).

    :param complete: require all 64 cells (``False``: any of them, as in a table of a few cells
        trained under other conditions for comparison).
    :raises FileNotFoundError: if there is no file at ``path``.
    :raises RewardTableError: on missing columns, bad values, repeated (cell, seed) pairs, sizes
        that differ between a cell's seeds, or (with ``complete``) a table that does not cover all
        64 cells.
    """
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
    if SCORE_COLUMN in df.columns:
        values = pd.to_numeric(df[SCORE_COLUMN], errors="coerce")
        bad = values.isna() | ~values.between(0.0, 100.0)
        if bad.any():
            raise RewardTableError(f"reward table {path}: column {SCORE_COLUMN} must be a number "
                                   f"in [0, 100]; line(s) {_rows(bad)} are not")
        df[SCORE_COLUMN] = values
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
    if absent and complete:
        names = ", ".join(SmallCell.from_index(i).to_string() for i in absent[:3])
        raise RewardTableError(
            f"reward table {path} is incomplete: it covers {NUM_CELLS - len(absent)} of the "
            f"{NUM_CELLS} A_small cells; {len(absent)} missing (indices "
            f"{index_ranges(absent)}; e.g. {names}{', ...' if len(absent) > 3 else ''}). Finish the build with "
            "experiments/build_reward_table.py or use a complete table."
        )
    return df.sort_values(["arch_index", "seed"], ignore_index=True)


def read_curve(path: Path, text: Any) -> tuple[tuple[float, float], ...]:
    """A row's ``val_curve``; tuples, since every query shares the table's records' curves."""
    try:
        curve = json.loads(text)
        return tuple((float(epoch), float(acc)) for epoch, acc in curve)
    except (TypeError, ValueError) as e:
        raise RewardTableError(f"reward table {path}: val_curve {text!r} is not a JSON list of "
                               f"[epoch, validation_accuracy] pairs ({e})") from None

