"""The best cell of each search of a study, retrained under another protocol (experiment 3's
second round: ``fast`` on the full dataset, two seeds), beside the best A_small cell of the same
dataset and the paper's best A_large cell.

A search's best cell is the one with its highest reward, the earliest where several tie (as in
:func:`agents.study_report.best_cell_table`). :func:`retrain_best_cells` trains each of them with
every seed through a :class:`~nas_env.evaluation.live.LiveEvaluator` (so each result is cached the
moment it finishes, a cell that several searches found is trained once, and a process pool trains
several runs at once), or only reads the cache. :func:`retrained_table` sets each search's cell
beside the best A_small cell of one or more reward tables (say, the shipped fp32 table and a
control trained in bf16) and says, for each, whether the cell beats it **by more than the two
cells' seed spread**: the difference of their mean validation accuracies exceeds the sum of their
spreads (highest seed minus lowest, each). :func:`retrained_by_searcher` compares the searchers by
their retrained cells, each against random search paired by search seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .study_report import LABELS

PAPER_A_LARGE = (41.41, 42.97)
"""Validation and test accuracy (%) of the paper's best A_large cell (Arora & Krone, Table 3)."""


BEST_CELL_COLUMNS = ("method", "search_seed", "arch", "search_reward")
"""The columns of a study's ``best_cells.csv`` (:func:`best_cell_of_each`)."""


def best_cell_of_each(searches: dict) -> pd.DataFrame:
    """One row per search (``method``, ``seed``): its best ``arch`` and that cell's ``reward``."""
    rows = []
    for (method, seed), frame in searches.items():
        best = frame.loc[frame["reward"].idxmax()]
        rows.append({"method": method, "search_seed": seed, "arch": str(best["arch"]),
                     "search_reward": float(best["reward"])})
    return pd.DataFrame(rows, columns=list(BEST_CELL_COLUMNS))


def read_best_cells(path: Path) -> pd.DataFrame:
    """A study's ``best_cells.csv``, checked: its columns and every cell's string form; a
    ``ValueError`` names what is wrong."""
    from nas_env.spaces import LargeCell

    best = pd.read_csv(path)
    lacking = [c for c in BEST_CELL_COLUMNS if c not in best]
    if lacking:
        raise ValueError(f"{path} lacks the columns {', '.join(lacking)}; a study's best_cells.csv "
                         f"has {', '.join(BEST_CELL_COLUMNS)}")
    for arch in best["arch"]:
        try:
            LargeCell.from_string(str(arch))
        except ValueError as err:
            raise ValueError(f"{path}: {arch!r} is not an A_large cell ({err})") from None
    return best[list(BEST_CELL_COLUMNS)]


def retrain_best_cells(searches: dict, evaluator, seeds, cached_only: bool = False,
                       log=print) -> tuple[pd.DataFrame, list[str]]:
    """Each search's best cell (:func:`best_cell_of_each`) through :func:`retrain_cells`."""
    return retrain_cells(best_cell_of_each(searches), evaluator, seeds, cached_only, log)


def retrain_cells(best: pd.DataFrame, evaluator, seeds, cached_only: bool = False,
                  log=print) -> tuple[pd.DataFrame, list[str]]:
    """The cells of ``best`` (one row per search: :data:`BEST_CELL_COLUMNS`) under ``evaluator``
    (a live A_large evaluator of the retraining protocol) with every one of ``seeds``, all runs
    handed to it at once (its backend may train several together); ``cached_only``: train
    nothing, take what the cache holds. Each run trained is logged through ``log`` the moment
    it finishes ("trained 3 of 22: ..."); at the end every (search, seed) is. Returns one row
    per (search, seed) with the validation and test accuracy, training seconds, precision,
    device and where the result came from, and the runs still missing."""
    from nas_env.spaces import LargeCell

    found = [(row, LargeCell.from_string(row.arch), int(seed))
             for row in best.itertuples(index=False) for seed in seeds]
    names = [f"{LABELS.get(row.method, row.method)} seed {row.search_seed}'s best cell, seed {seed}"
             for row, _, seed in found]
    if cached_only:
        results = [evaluator.cached_result(cell, seed) for _, cell, seed in found]
    else:
        results = evaluator.evaluate_seeds([(cell, seed) for _, cell, seed in found],
                                           on_trained=_progress_log(found, names, evaluator, log))
    rows, missing = [], []
    for (row, _, seed), name, result in zip(found, names, results):
        if result is None:
            missing.append(name)
            continue
        rows.append({**row._asdict(), "seed": seed,
                     "validation_accuracy": result["validation_accuracy"],
                     "test_accuracy": result["test_accuracy"],
                     "training_time": result["training_time"],
                     "precision": result["precision"], "device": result["device"],
                     "failure": result["failure"],
                     "source": result["source"]})
        log(f"{name}: validation {result['validation_accuracy']:.2f}, test "
            f"{result['test_accuracy']:.2f} ({result['source']}, {result['training_time']:.0f} s)")
    return pd.DataFrame(rows), missing


def _progress_log(found: list, names: list[str], evaluator, log):
    """The ``on_trained`` hook of :func:`retrain_cells`: logs each run as it finishes, with how
    many of the runs the cache lacked have finished (a cell several searches found is one run)."""
    runs: dict[tuple[str, int], tuple] = {}  # (cell key, seed) -> (cell, the searches' names)
    for (_, cell, seed), name in zip(found, names):
        runs.setdefault((cell.key, seed), (cell, []))[1].append(name)
    todo = sum(evaluator.cached_result(cell, seed) is None for (_, seed), (cell, _) in runs.items())
    done = 0

    def on_trained(cell, seed, result) -> None:
        nonlocal done
        done += 1
        outcome = (f"failed: {result['failure']}" if result["failure"] else
                   f"validation {result['validation_accuracy']:.2f}, "
                   f"test {result['test_accuracy']:.2f}")
        log(f"trained {done} of {todo}: {'; '.join(runs[cell.key, seed][1])}: {outcome} "
            f"({result['training_time']:.0f} s)")
    return on_trained


def best_small_cell(table_path: Path) -> pd.DataFrame:
    """The rows (one per seed) of the best cell of the A_small reward table at ``table_path`` by
    mean validation accuracy over its seeds, among the cells it holds (all 64 in a shipped table;
    fewer in a table of a few cells trained under other conditions, such as another precision).

    :raises FileNotFoundError: if there is no file at ``table_path``.
    :raises ~nas_env.tables.RewardTableError: if it is not a valid reward table
        (:func:`nas_env.tables.schema.read_rows`).
    """
    from nas_env.tables.schema import read_rows

    small = read_rows(Path(table_path), complete=False)
    best = small.groupby("arch")["validation_accuracy"].mean().idxmax()
    return small[small["arch"] == best].reset_index(drop=True)


def train_control(small: pd.DataFrame, dataset: str, protocol, seeds, out_dir, *,
                  data_root=None, device: str = "auto", precision: str = "auto",
                  threads: int | None = None, checkpoint_dir=None,
                  cached_only: bool = False) -> Path | None:
    """The like-for-like reference for the retrained cells: the A_small cell whose rows are
    ``small`` (:func:`best_small_cell` of a table trained otherwise: another precision, device or
    CPU) trained under ``protocol`` on ``seeds`` with the device, precision and torch threads of
    the retraining, into the reward table in ``out_dir`` (``small_{dataset}_{protocol}.csv``,
    through :func:`nas_env.tables.builder.build_reward_table`: resumable, each run appended as it
    finishes). Returns the table's path; with ``cached_only`` it trains nothing and returns the
    path only where the table holds every seed (else ``None``).

    :raises ValueError: if ``out_dir`` holds a table of this protocol trained under other
        conditions (another precision or device).
    """
    import torch

    from nas_env.spaces import SmallCell
    from nas_env.tables.builder import build_reward_table, table_stem
    from nas_env.training import get_protocol

    cell = SmallCell.from_string(str(small["arch"].iloc[0]))
    if cached_only:
        path = Path(out_dir) / f"{table_stem('small', dataset, get_protocol(protocol).name)}.csv"
        rows = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["arch", "seed"])
        return path if set(seeds) <= set(rows[rows["arch"] == cell.to_string()]["seed"]) else None
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return build_reward_table(dataset=dataset, protocol=protocol, archs=[cell], seeds=seeds,
                                  out_dir=out_dir, data_root=data_root, device=device,
                                  precision=precision, progress=False,
                                  checkpoint_dir=checkpoint_dir)
    finally:
        torch.set_num_threads(before)


class Reference(NamedTuple):
    """The best A_small cell of one reward table, as the retrained cells are set beside it."""

    label: str
    """How the report's columns name it: ``""`` where it is the only reference."""
    table: str
    """The table's path, as the report names it."""
    rows: pd.DataFrame
    """That cell's rows, one per seed (:func:`best_small_cell`)."""

    @property
    def suffix(self) -> str:
        """``", {label}"``, what the report's names of this reference end with (``""``: none)."""
        return f", {self.label}" if self.label else ""


def references(table_paths, root: Path | None = None, control=None) -> list[Reference]:
    """The best A_small cell (:func:`best_small_cell`) of each reward table of ``table_paths``,
    labelled by the table's precision where the tables' precisions differ (``fp32``, ``bf16``),
    else by its file name, else by its path (one table alone gets the label ``""``); then that
    of the table ``control`` (:func:`train_control`'s), labelled ``control``. The report names
    each table by its full path, relative to ``root`` where it lies below it.

    :raises FileNotFoundError: if a path holds no file.
    :raises ~nas_env.tables.RewardTableError: if a file is not a valid reward table.
    """
    paths = [Path(path) for path in table_paths]
    shown = [path.resolve() for path in [*paths, *([Path(control)] if control else [])]]
    shown = [str(path.relative_to(root.resolve()) if root and path.is_relative_to(root.resolve())
                 else path) for path in shown]
    cells = [best_small_cell(path) for path in paths]
    precisions = [", ".join(sorted(set(rows["precision"].astype(str)))) if "precision" in rows
                  else "" for rows in cells]
    labels = [""] if len(paths) == 1 and not control else next(
        names for names in (precisions, [path.name for path in paths], shown[:len(paths)])
        if all(names) and len(set(names)) == len(names))
    refs = [Reference(label, name, rows) for label, name, rows in zip(labels, shown, cells)]
    return refs + ([Reference("control", shown[-1], best_small_cell(Path(control)))]
                   if control else [])


def _spread(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.max() - values.min()) if len(values) > 1 else np.nan


def _beats_column(ref: Reference) -> str:
    return f"beats A_small{ref.suffix} by more than the spreads"


def retrained_table(retrained: pd.DataFrame, small) -> pd.DataFrame:
    """One row per search's retrained cell: its validation accuracy per seed, mean validation and
    test, and seed spread; then, for each reference (``small``: a list of :class:`Reference`, or
    one best A_small cell's rows), its mean's difference from that cell's (``minus A_small``, or
    ``minus A_small, {label}``) and whether the difference exceeds the two spreads' sum. Then a
    row for each reference cell and the paper's best A_large cell."""
    refs = [Reference("", "", small)] if isinstance(small, pd.DataFrame) else list(small)
    rows = []
    for (method, search_seed), runs in retrained.groupby(["method", "search_seed"], sort=False):
        runs = runs.sort_values("seed")
        spread = _spread(runs["validation_accuracy"])
        row = {
            "cell": f"{LABELS.get(method, method)}, seed {search_seed}",
            "search reward": float(runs["search_reward"].iloc[0]),
            "validation by seed": ", ".join(f"{v:.2f}" for v in runs["validation_accuracy"]),
            "validation": float(runs["validation_accuracy"].mean()),
            "test": float(runs["test_accuracy"].mean()), "spread": spread}
        for ref in refs:
            difference = row["validation"] - float(ref.rows["validation_accuracy"].mean())
            ref_spread = _spread(ref.rows["validation_accuracy"])
            row[f"minus A_small{ref.suffix}"] = difference
            row[_beats_column(ref)] = (
                "" if np.isnan(spread) or np.isnan(ref_spread)
                else "yes" if difference > spread + ref_spread else "no")
        rows.append(row)
    for ref in refs:
        arch = ref.rows["arch"].iloc[0].replace("|", "\\|")  # a bar would end the table's cell
        rows.append({"cell": f"best A_small cell `{arch}`{ref.suffix}",
                     "validation by seed": ", ".join(f"{v:.2f}"
                                                     for v in ref.rows["validation_accuracy"]),
                     "validation": float(ref.rows["validation_accuracy"].mean()),
                     "test": float(ref.rows["test_accuracy"].mean()),
                     "spread": _spread(ref.rows["validation_accuracy"])})
    rows.append({"cell": "the paper's best A_large cell (Table 3)",
                 "validation": PAPER_A_LARGE[0], "test": PAPER_A_LARGE[1]})
    return pd.DataFrame(rows)


def _cell_means(retrained: pd.DataFrame) -> pd.Series:
    """Each retrained cell's mean validation over its seeds, by (method, search seed)."""
    return retrained.groupby(["method", "search_seed"], sort=False)["validation_accuracy"].mean()


def retrained_by_searcher(retrained: pd.DataFrame, baseline: str = "random") -> pd.DataFrame:
    """One row per searcher: how many of its searches' best cells are retrained, their mean
    validation (each cell's mean over its seeds, then the mean over the searches), and that
    minus ``baseline``'s, paired by search seed, with a 95% Student-t interval over the seeds
    both have and how many lie above (:func:`agents.study_report.paired_difference`): does a
    searcher that wins on the search reward also find the better cells?"""
    from .study_report import paired_difference

    means = _cell_means(retrained)
    theirs = means[baseline].to_dict() if baseline in means.index.get_level_values(0) else {}
    rows = []
    for method in dict.fromkeys(means.index.get_level_values(0)):
        mine = means[method].to_dict()
        row = {"searcher": LABELS.get(method, method), "cells": len(mine),
               "validation (mean over searches)": float(np.mean(list(mine.values())))}
        if method != baseline:
            paired = paired_difference(mine, theirs)
            row.update({f"minus {LABELS.get(baseline, baseline)}": paired["mean"],
                        "95% low": paired["low"], "95% high": paired["high"],
                        "seeds above": f"{paired['above']} of {len(paired['seeds'])}"})
        rows.append(row)
    return pd.DataFrame(rows)


def ppo_against_evolution(retrained: pd.DataFrame) -> str:
    """A sentence on PPO's retrained cells minus regularized evolution's, paired by search seed
    (as :func:`retrained_by_searcher` pairs them with random search's); ``""`` where either
    searcher has no retrained cell."""
    from .study_report import paired_difference

    means = _cell_means(retrained)
    if not {"ppo", "evolution"} <= set(means.index.get_level_values(0)):
        return ""
    paired = paired_difference(means["ppo"].to_dict(), means["evolution"].to_dict())
    if not paired["seeds"]:
        return ""
    return (f"PPO minus regularized evolution, paired the same way: {paired['mean']:+.2f} "
            f"[{paired['low']:.2f}, {paired['high']:.2f}], PPO above in {paired['above']} of "
            f"{len(paired['seeds'])} seeds.")


def _conditions(rows: pd.DataFrame) -> str:
    """``precision bf16; device cuda``: what ``rows`` (results, or a table's rows) trained
    under, each field that they record."""
    parts = [f"{field} {', '.join(sorted(set(rows[field].astype(str))))}"
             for field in ("precision", "device") if field in rows and len(rows)]
    return "; ".join(parts) or "precision -"


def _beside(refs: list[Reference]) -> str:
    """The report's words on the reference cells the retrained cells are set beside."""
    held = "by mean validation over its seeds, of the cells it holds"
    if len(refs) == 1:
        return f"the best A_small cell of `{refs[0].table}` ({held}; {_conditions(refs[0].rows)})"
    return (f"the best A_small cell ({held}) of each of these tables: " + "; ".join(
        f"`{ref.table}` ({ref.label}: {_conditions(ref.rows)})" for ref in refs))


def retrained_markdown(retrained: pd.DataFrame, small, protocol: str, missing: list[str]) -> str:
    """The report's section on the retrained cells (:func:`retrained_table`; ``small``: a list
    of :class:`Reference`), with each cell's string form and the runs not yet in the cache."""
    from .study_report import markdown

    text = (f"## The best cell of each search, retrained under `{protocol}`\n\n"
            f"Validation and test accuracy (%) of each search's best cell trained under "
            f"`{protocol}` on the seeds shown ({_conditions(retrained)}), beside "
            f"{_beside(small)}. Spread: the highest seed's validation minus the lowest's. The "
            "goal: a cell whose mean validation beats the A_small cell's by more than the sum of "
            "the two spreads.\n\n")
    if len(retrained):
        table = retrained_table(retrained, small)
        searches = retrained.groupby(["method", "search_seed"]).ngroups
        beats = [f"{int((table[_beats_column(ref)] == 'yes').sum())} of {searches}"
                 + (f" ({ref.label})" if ref.label else "") for ref in small]
        versus_evolution = ppo_against_evolution(retrained)
        text += (markdown(table) + "\n\nCells that beat the best A_small cell by more than the "
                 f"spreads: {', '.join(beats)}."
                 "\n\nBy searcher: the mean validation of its searches' retrained best cells, "
                 "and its difference from random search's, paired by search seed, with a 95% "
                 "Student-t interval over those seeds:\n\n"
                 + markdown(retrained_by_searcher(retrained))
                 + (f"\n\n{versus_evolution}" if versus_evolution else "") +
                 "\n\nThe cells:\n\n" + "\n".join(
                     f"- {LABELS.get(m, m)}, seed {s}: `{a}`" for (m, s), a in
                     retrained.groupby(["method", "search_seed"], sort=False)["arch"].first().items())
                 + "\n")
    else:
        text += "No retraining has finished yet.\n"
    if missing:
        text += f"\nNot in the cache yet ({len(missing)} runs): {'; '.join(missing)}.\n"
    return text
