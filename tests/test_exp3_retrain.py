"""Experiment 3's best cells retrained (``experiments/exp3_study.py --retrain``, and
``gpu_exp3_study.sh``): each search's best cell trained on two seeds into a cache, replayed from
it, set beside the best A_small cell of one or more reward tables and of a control trained the
way they are (``--retrain-control``), and the searchers compared by their retrained cells."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import nas_env.training
from agents.study_retrain import (ppo_against_evolution, references, retrained_by_searcher,
                                  retrained_table)

from exp3_support import ROOT, TINY, forbid


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="needs bash and coreutils' timeout")
def test_the_gpu_script_retrains_a_best_cells_list_into_its_own_cache_and_resumes(
        tmp_path, synthetic_data_root):
    cells = tmp_path / "best_cells.csv"
    cells.write_text("method,search_seed,arch,search_reward\nrandom,0,|conv3x3~0|identity~0|,80.0\n")
    out = tmp_path / "gpu_results"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "KIT": str(tmp_path / "no_kit"),
           "NAS_ENV_DATA": str(synthetic_data_root), "DATASET": "mnist", "PROTOCOL": "cheap",
           "RETRAIN": "cheap", "CELLS": str(cells), "DEVICE": "cpu", "WORKERS": "1",
           "THREADS": "1"}

    def run() -> str:
        done = subprocess.run(["bash", "experiments/gpu_exp3_study.sh"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    shipped = ROOT / "reward_tables" / "evaluations" / "large_mnist_cheap.sqlite"

    def rows_shipped() -> int:
        with contextlib.closing(sqlite3.connect(f"file:{shipped}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    before = rows_shipped()
    printed = run()
    assert "exp3_study.py exit status: 0" in printed
    # A copy of the shipped cache, grown and checked (experiments/check_cache.py).
    assert f"{out / 'large_mnist_cheap.sqlite'}:\n{before + 2} rows\n" in printed
    assert "all checks passed" in printed
    retrained = pd.read_csv(out / "exp3_study" / "retrained_cheap.csv")
    assert retrained["seed"].tolist() == [0, 1] and set(retrained["source"]) == {"training"}
    assert set(retrained["device"]) == {"cpu"}
    assert rows_shipped() == before  # the shipped cache is only copied
    control = pd.read_csv(out / "control" / "small_mnist_cheap.csv")  # the A_small cell, here
    assert control["seed"].tolist() == [0, 1] and set(control["device"]) == {"cpu"}
    report = (out / "exp3_study" / "report.md").read_text()  # the shipped table is fp32
    assert "minus A_small, fp32 |" in report and "minus A_small, control |" in report
    run()  # the same command again: both runs come from its cache
    assert set(pd.read_csv(out / "exp3_study" / "retrained_cheap.csv")["source"]) == {"cache"}
    assert len(pd.read_csv(out / "control" / "small_mnist_cheap.csv")) == 2  # not trained again


def test_the_best_cell_of_each_search_is_retrained_and_set_beside_the_best_a_small_cell(
        study, tmp_path, monkeypatch, capsys, synthetic_data_root, load_script):
    out, fixture = tmp_path / "study", ROOT / "tests" / "fixtures" / "small_fixture.csv"
    retrain = ["--retrain", TINY.replace('"tiny"', '"tiny-retrain"'), "--retrain-seeds", "0,1",
               "--retrain-cache", str(tmp_path / "retrain.sqlite"), "--small-table", str(fixture)]
    assert study("--methods", "random", "--seeds", "0-1", "--workers", "2", *retrain) == 0
    retrained = pd.read_csv(out / "retrained_tiny-retrain.csv")
    assert len(retrained) == 4 and set(retrained["source"]) == {"training"}
    # Each run is logged the moment it finishes, counted against the runs the cache lacked.
    runs = len(retrained.drop_duplicates(["arch", "seed"]))
    progress = re.findall(r"^trained (\d) of (\d): random search seed \d's best cell, seed \d.*"
                          r": validation [\d.]+, test [\d.]+ \(\d+ s\)$",
                          capsys.readouterr().out, flags=re.M)
    assert progress == [(str(i), str(runs)) for i in range(1, runs + 1)]
    assert set(retrained["device"]) == {"cpu"}
    for seed in (0, 1):  # each search's best cell: its highest reward, the earliest on a tie
        frame = pd.read_csv(out / f"random_seed{seed}" / "evaluations.csv")
        runs = retrained[retrained["search_seed"] == seed]
        assert set(runs["arch"]) == {frame.loc[frame["reward"].idxmax(), "arch"]}
        assert runs["seed"].tolist() == [0, 1]
    report = (out / "report.md").read_text()
    assert "retrained under `tiny-retrain`" in report and "the paper's best A_large cell" in report
    small = pd.read_csv(fixture)
    best_small = small.groupby("arch")["validation_accuracy"].mean().idxmax()
    assert f"best A_small cell `{best_small}`".replace("|", "\\|") in report and "of 2." in report
    assert "PPO's settings" not in report  # no PPO search in this study
    assert "seeds shown (precision fp32; device cpu)" in report
    assert "A_small cell of `tests/fixtures/small_fixture.csv`" in report  # which table, in full

    # Reported again without training: every run comes from the retraining's cache ...
    forbid(monkeypatch, nas_env.training, "train_child")
    assert study("--methods", "random", "--seeds", "0-1", "--report-only", *retrain) == 0
    again = pd.read_csv(out / "retrained_tiny-retrain.csv")
    assert set(again["source"]) == {"cache"}
    assert again["validation_accuracy"].tolist() == retrained["validation_accuracy"].tolist()
    # A table of a few cells (here one, trained in another precision) is read too: its best cell
    # among those it holds is the one the retrained cells are set beside.
    worst = small.groupby("arch")["validation_accuracy"].mean().idxmin()
    partial, flags = tmp_path / "small_one_cell.csv", list(retrain)
    small[small["arch"] == worst].assign(precision="bf16").to_csv(partial, index=False)
    flags[flags.index("--small-table") + 1] = str(partial)
    assert study("--methods", "random", "--seeds", "0-1", "--report-only", *flags) == 0
    report = (out / "report.md").read_text()
    assert f"best A_small cell `{worst}`".replace("|", "\\|") in report
    assert "of the cells it holds; precision bf16; device cpu" in report
    # Both tables at once (both bf16, so named by file): a column of differences and a count each.
    assert study("--methods", "random", "--seeds", "0-1", "--report-only", *retrain,
                 "--small-table", str(partial)) == 0
    report = (out / "report.md").read_text()
    assert "minus A_small, small_fixture.csv |" in report
    assert "minus A_small, small_one_cell.csv |" in report
    assert f"best A_small cell `{worst}`, small_one_cell.csv".replace("|", "\\|") in report
    assert f"best A_small cell `{best_small}`, small_fixture.csv".replace("|", "\\|") in report
    assert re.search(r"by more than the spreads: \d of 2 \(small_fixture.csv\), \d of 2 "
                     r"\(small_one_cell.csv\)\.", report)
    # ... and with another cache, the report names the runs it still lacks.
    retrain[retrain.index("--retrain-cache") + 1] = str(tmp_path / "empty.sqlite")
    capsys.readouterr()
    assert study("--methods", "random", "--seeds", "0-1", "--report-only", *retrain) == 0
    assert "Not in the cache yet (4 runs)" in capsys.readouterr().out
    # Another folder retrains the cells of this study's best_cells.csv and runs no search.
    best = pd.read_csv(out / "best_cells.csv")
    assert best[["search_seed", "arch"]].values.tolist() == \
        retrained.drop_duplicates("search_seed")[["search_seed", "arch"]].values.tolist()
    elsewhere = tmp_path / "elsewhere"
    module = load_script("exp3_study")
    base = ["--dataset", "mnist", "--protocol", TINY, "--blocks", "1", "--cells", "8",
            "--data-root", str(synthetic_data_root), "--cache-path", str(tmp_path / "none.sqlite"),
            "--out-dir", str(elsewhere), "--methods", "random", "--seeds", "0-1"]
    retrain[retrain.index("--retrain-cache") + 1] = str(tmp_path / "retrain.sqlite")
    assert module.main([*base, *retrain, "--retrain-cells", str(out / "best_cells.csv")]) == 0
    assert "no search is run" in capsys.readouterr().out
    assert "The searches ran elsewhere" in (elsewhere / "report.md").read_text()
    assert not (elsewhere / "random_seed0").exists() and not (tmp_path / "none.sqlite").exists()
    assert pd.read_csv(elsewhere / "retrained_tiny-retrain.csv")["validation_accuracy"].tolist() \
        == retrained["validation_accuracy"].tolist()
    (tmp_path / "bad.csv").write_text("arch\n|conv3x3~0|conv3x3~0|\n")
    with pytest.raises(SystemExit):
        module.main([*base, *retrain, "--retrain-cells", str(tmp_path / "bad.csv")])
    assert "lacks the columns method, search_seed, search_reward" in capsys.readouterr().err
    # Runs trained on the CPU are never served as another device's.
    retrain[retrain.index("--retrain-cache") + 1] = str(tmp_path / "retrain.sqlite")
    assert study("--methods", "random", "--seeds", "0-1", "--report-only", *retrain,
                 "--retrain-device", "cuda") == 0
    assert "Not in the cache yet (4 runs)" in capsys.readouterr().out


def test_a_cell_beats_the_a_small_cell_only_by_more_than_both_spreads():
    small = pd.DataFrame({"arch": ["|conv3x3~0|+|conv3x3~1|"] * 2, "validation_accuracy": [91.0, 91.06],
                          "test_accuracy": [90.6, 90.64], "precision": ["fp32"] * 2})
    retrained = pd.DataFrame({
        "method": ["ppo", "ppo", "random", "random"], "search_seed": [0, 0, 0, 0],
        "arch": ["a", "a", "b", "b"], "search_reward": [90.0, 90.0, 89.0, 89.0], "seed": [0, 1, 0, 1],
        "validation_accuracy": [91.5, 91.7, 91.2, 91.6], "test_accuracy": [91.0] * 4})
    table = retrained_table(retrained, small).set_index("cell")
    ppo, random = table.loc["PPO, seed 0"], table.loc["random search, seed 0"]
    # PPO: mean 91.6, spread 0.2; the A_small cell: mean 91.03, spread 0.06. 0.57 > 0.26.
    assert ppo["minus A_small"] == pytest.approx(0.57) and ppo["spread"] == pytest.approx(0.2)
    assert ppo["beats A_small by more than the spreads"] == "yes"
    # Random search: mean 91.4, spread 0.4: 0.37 is above the A_small cell, not above 0.46.
    assert random["minus A_small"] == pytest.approx(0.37)
    assert random["beats A_small by more than the spreads"] == "no"
    assert table.loc["the paper's best A_large cell (Table 3)", "validation"] == 41.41


def test_retrained_cells_are_set_beside_each_reference_table(tmp_path):
    """Two tables of the same cell, one in fp32 (91.0, 91.06) and one in bf16 (90.7, 91.1):
    each gets its own difference and verdict, labelled by its precision, and its own row."""
    rows = pd.read_csv(ROOT / "tests" / "fixtures" / "small_fixture.csv")
    rows = rows[rows["arch"] == rows["arch"].iloc[0]]
    arch = rows["arch"].iloc[0]
    fp32, bf16 = tmp_path / "fp32" / "small.csv", tmp_path / "bf16" / "small.csv"
    for path, values, precision in ((fp32, [91.0, 91.06], "fp32"), (bf16, [90.7, 91.1], "bf16")):
        path.parent.mkdir()
        rows.assign(validation_accuracy=values, precision=precision).to_csv(path, index=False)
    retrained = pd.DataFrame({
        "method": ["ppo", "ppo"], "search_seed": [0, 0], "arch": ["a", "a"],
        "search_reward": [90.0, 90.0], "seed": [0, 1], "validation_accuracy": [91.3, 91.4],
        "test_accuracy": [91.0] * 2})
    refs = references([fp32, bf16], root=tmp_path)
    assert [(ref.label, ref.table) for ref in refs] == [("fp32", "fp32/small.csv"),
                                                         ("bf16", "bf16/small.csv")]
    table = retrained_table(retrained, refs).set_index("cell")
    ppo = table.loc["PPO, seed 0"]
    # 91.35 - 91.03 = 0.32 > 0.1 + 0.06; 91.35 - 90.9 = 0.45, not above 0.1 + 0.4.
    assert ppo["minus A_small, fp32"] == pytest.approx(0.32)
    assert ppo["beats A_small, fp32 by more than the spreads"] == "yes"
    assert ppo["minus A_small, bf16"] == pytest.approx(0.45)
    assert ppo["beats A_small, bf16 by more than the spreads"] == "no"
    assert table.loc[f"best A_small cell `{arch}`, bf16".replace("|", "\\|"), "spread"] == \
        pytest.approx(0.4)
    # Tables of one precision are told apart by file name, and then by path.
    other, copy = tmp_path / "other.csv", tmp_path / "copy" / "small.csv"
    copy.parent.mkdir()
    for path in (other, copy):
        path.write_text(fp32.read_text())
    assert [ref.label for ref in references([fp32, other])] == ["small.csv", "other.csv"]
    assert [ref.label for ref in references([fp32, copy])] == [str(fp32), str(copy)]
    assert [ref.label for ref in references([fp32])] == [""]


def test_searchers_are_compared_by_their_retrained_cells_paired_by_search_seed():
    """Two searches each of PPO and random search, two training seeds per cell: PPO's cells
    average 91.0 and 90.0, random search's 90.5 and 90.5, so PPO is +0.5 on seed 0 and -0.5 on
    seed 1: a mean difference of 0 with a t interval of +-12.706 * 0.5 (one degree of freedom)."""
    rows = [("ppo", 0, 90.8), ("ppo", 0, 91.2), ("ppo", 1, 90.0), ("ppo", 1, 90.0),
            ("random", 0, 90.4), ("random", 0, 90.6), ("random", 1, 90.5), ("random", 1, 90.5),
            ("evolution", 1, 92.0), ("evolution", 1, 91.0)]
    retrained = pd.DataFrame(rows, columns=["method", "search_seed", "validation_accuracy"])
    table = retrained_by_searcher(retrained).set_index("searcher")
    ppo = table.loc["PPO"]
    assert ppo["cells"] == 2 and ppo["validation (mean over searches)"] == pytest.approx(90.5)
    assert ppo["minus random search"] == pytest.approx(0.0)
    assert ppo["95% high"] == pytest.approx(12.706 * 0.5, rel=1e-3)
    assert ppo["seeds above"] == "1 of 2"
    # Evolution has one search, paired with random search's seed 1: +1.0, no interval.
    evolution = table.loc["regularized evolution"]
    assert evolution["minus random search"] == pytest.approx(1.0)
    assert np.isnan(evolution["95% low"]) and evolution["seeds above"] == "1 of 1"
    # Random search is the baseline: no difference of its own.
    assert np.isnan(table.loc["random search", "minus random search"])


def test_ppo_is_compared_with_evolution_by_retrained_cells():
    rows = [("ppo", 0, 91.0), ("ppo", 1, 90.0), ("ppo", 2, 91.0), ("evolution", 0, 90.5),
            ("evolution", 1, 90.5), ("evolution", 2, 90.0), ("random", 0, 89.0)]
    retrained = pd.DataFrame(rows, columns=["method", "search_seed", "validation_accuracy"])
    # Differences +0.5, -0.5, +1.0: mean 0.33, sd 0.764, t(0.975, 2) = 4.303.
    half = 4.302653 * np.std([0.5, -0.5, 1.0], ddof=1) / np.sqrt(3)
    assert ppo_against_evolution(retrained) == (
        f"PPO minus regularized evolution, paired the same way: +0.33 [{1 / 3 - half:.2f}, "
        f"{1 / 3 + half:.2f}], PPO above in 2 of 3 seeds.")
    assert ppo_against_evolution(retrained[retrained["method"] != "evolution"]) == ""


def test_the_control_is_the_best_a_small_cell_trained_as_the_cells_are_retrained(
        study, tmp_path, monkeypatch, capsys):
    fixture, control = ROOT / "tests" / "fixtures" / "small_fixture.csv", tmp_path / "control"
    retrain = ["--retrain", TINY.replace('"tiny"', '"tiny-retrain"'), "--retrain-seeds", "0,1",
               "--retrain-cache", str(tmp_path / "retrain.sqlite"), "--small-table", str(fixture),
               "--retrain-control", str(control)]
    assert study("--methods", "random", "--seeds", "0", *retrain) == 0
    small = pd.read_csv(fixture)
    best = small.groupby("arch")["validation_accuracy"].mean().idxmax()
    table = pd.read_csv(control / "small_mnist_tiny-retrain.csv")
    assert table["arch"].tolist() == [best, best] and table["seed"].tolist() == [0, 1]
    # Trained as the A_large cells were (fp32 on the CPU), not as the fixture's table (bf16).
    retrained = pd.read_csv(tmp_path / "study" / "retrained_tiny-retrain.csv")
    assert set(table["precision"]) == set(retrained["precision"]) == {"fp32"}
    assert set(table["device"]) == set(retrained["device"]) == {"cpu"}
    report = (tmp_path / "study" / "report.md").read_text()
    arch = best.replace("|", "\\|")
    assert f"best A_small cell `{arch}`, bf16" in report
    assert f"best A_small cell `{arch}`, control" in report and "(control: precision fp32" in report
    assert "minus A_small, bf16 |" in report and "minus A_small, control |" in report

    # Reported again without training, the control's table is read as it is.
    forbid(monkeypatch, nas_env.training, "train_child")
    assert study("--methods", "random", "--seeds", "0", "--report-only", *retrain) == 0
    assert (tmp_path / "study" / "report.md").read_text() == report
    # A folder without the control's runs is left out of the report, which says so.
    retrain[-1] = str(tmp_path / "empty")
    capsys.readouterr()
    assert study("--methods", "random", "--seeds", "0", "--report-only", *retrain) == 0
    assert "lacks the control's runs; the report leaves it out" in capsys.readouterr().out
    # A control folder whose table was trained otherwise is refused before anything trains.
    retrain[-1] = str(control)
    with pytest.raises(SystemExit):
        study("--methods", "random", "--seeds", "0", *retrain, "--retrain-precision", "bf16")
    assert f"--retrain-control {control}: " in capsys.readouterr().err
