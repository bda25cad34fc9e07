"""Experiment 3's second round (``experiments/exp3_study.py``): several seeds per searcher on tiny
1-block cells and synthetic data, the report with the difference from random search, resuming,
replaying from the cache without training, the PPO settings sweep, and the flags' errors."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nas_env.training
import nas_env.zero_cost
from agents.study_report import (against_random, last_quarter, paired_interval, reward_label,
                                 tuning_table, update_log)
from agents.study_retrain import (ppo_against_evolution, references, retrained_by_searcher,
                                   retrained_table)
from nas_env.protocols import SCORE_PROTOCOLS, ScoreProtocol

ROOT = Path(__file__).resolve().parents[1]
TINY = json.dumps({"name": "tiny", "epochs": 1, "lr": 1e-2, "schedule": "onecycle",
                   "batch_size": 32, "checkpoints_per_epoch": 1, "filters": [4, 8],
                   "fc_units": 32, "precision": "fp32"})
PPO_SMALL = json.dumps({"n_steps": 4, "batch_size": 4})
BEST_CELLS = ROOT / "docs" / "data" / "exp3_study" / "fashion_mnist_loss12k_best_cells.csv"
"""A CSV that is not a reward table."""


def study_script():
    spec = importlib.util.spec_from_file_location("exp3_study_script",
                                                  ROOT / "experiments" / "exp3_study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def study(tmp_path, synthetic_data_root):
    """``exp3_study.main`` with the flags of a tiny study in ``tmp_path`` and ``extra``."""
    module = study_script()

    def run(*extra: str, protocol: str = TINY) -> int:
        return module.main(["--dataset", "mnist", "--protocol", protocol, "--blocks", "1",
                            "--cells", "8", "--data-root", str(synthetic_data_root),
                            "--out-dir", str(tmp_path / "study"), "--cache-path",
                            str(tmp_path / "cache.sqlite"), "--threads", "1",
                            "--no-checkpoints", *extra])
    return run


def forbid(monkeypatch, module, name: str) -> None:
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} was called where everything should come from the cache")
    monkeypatch.setattr(module, name, fail)


def attempts(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "attempts.csv")


def test_a_study_reports_against_random_resumes_and_replays_from_its_cache(
        study, tmp_path, monkeypatch, capsys):
    out = tmp_path / "study"
    assert study("--methods", "ppo", "random", "--seeds", "0-1", "--ppo-settings", PPO_SMALL) == 0
    names = ["ppo_seed0", "ppo_seed1", "random_seed0", "random_seed1"]
    for name in names:
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["sampled"] == 8 and summary["sources"].get("training", 0) >= 1
        assert summary["device"] == "cpu"  # the study's default: where the shipped caches trained
        assert attempts(out / name)["status"].tolist() == ["finished"]
    assert json.loads((out / "ppo_seed0" / "summary.json").read_text())["ppo_settings"] == {
        "n_steps": 4, "batch_size": 4}
    assert update_log(out / "ppo_seed0")["update"].tolist() == [1, 2]  # 8 cells, 4 per update
    report = (out / "report.md").read_text()
    assert report in capsys.readouterr().out and (out / "curves_mnist.png").stat().st_size > 0
    assert "Below the budget rule" in report and "Student-t" in report
    assert "Reward: validation accuracy (%)." in report
    row = next(line for line in report.splitlines() if line.startswith("| PPO "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    difference, low, high = map(float, cells[4:7])
    assert low < difference < high and cells[7].endswith("of 2")
    # The same difference by hand: last quarter (2 of 8 cells), PPO minus random, per seed.
    frames = {(m, s): pd.read_csv(out / f"{m}_seed{s}" / "evaluations.csv")
              for m in ("ppo", "random") for s in (0, 1)}
    by_hand = np.mean([last_quarter(frames["ppo", s]["reward"]).mean()
                       - last_quarter(frames["random", s]["reward"]).mean() for s in (0, 1)])
    assert against_random(frames, "ppo")["mean"] == pytest.approx(by_hand)
    assert difference == pytest.approx(by_hand, abs=0.006)

    # A search that did not finish (no summary) is run again, from the cache: nothing trains,
    # and the finished ones are skipped.
    (out / "random_seed1" / "summary.json").unlink()
    forbid(monkeypatch, nas_env.training, "train_child")
    assert study("--methods", "ppo", "random", "--seeds", "0-1", "--ppo-settings", PPO_SMALL) == 0
    assert "3 of 4 searches finished; running 1" in capsys.readouterr().out
    assert len(attempts(out / "random_seed1")) == 2 and len(attempts(out / "ppo_seed0")) == 1
    replayed = json.loads((out / "random_seed1" / "summary.json").read_text())
    assert replayed["sources"] == {"cache": 8} and attempts(out / "random_seed1")["trained"].iloc[-1] == 0
    every = (out / "report.md").read_text().split("## Every search")[1].split("##")[0]
    assert every.count("| random search |") == 2  # both seeds again

    # The same with two searches at once, each in its own process: both replay, none trains.
    for name in ("ppo_seed1", "random_seed0"):
        (out / name / "summary.json").unlink()
    assert study("--methods", "ppo", "random", "--seeds", "0-1", "--ppo-settings", PPO_SMALL,
                 "--workers", "2") == 0
    for name in ("ppo_seed1", "random_seed0"):
        assert json.loads((out / name / "summary.json").read_text())["sources"] == {"cache": 8}
        assert attempts(out / name)["status"].tolist() == ["finished", "finished"]

    # Another study's settings in the same folder are refused, naming what differs.
    with pytest.raises(SystemExit) as exited:
        study("--methods", "ppo", "--seeds", "0")  # PPO's default settings this time
    assert exited.value.code == 2
    assert "hold searches with other settings" in capsys.readouterr().err
    # So is a search whose cells trained on another device: the cache would not replay it.
    path = out / "random_seed0" / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "device": "cuda"}))
    with pytest.raises(SystemExit):
        study("--methods", "random", "--seeds", "0")
    assert "random_seed0: holds another search (device='cuda')" in capsys.readouterr().err


def test_an_interrupted_study_resumes_training_only_what_is_left(study, tmp_path, monkeypatch,
                                                                  capsys):
    out, real, calls = tmp_path / "study", nas_env.training.train_child, []

    def stopped_at_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(nas_env.training, "train_child", stopped_at_the_third)
    with pytest.raises(SystemExit) as exited:
        study("--methods", "random", "evolution", "--seeds", "0")
    assert exited.value.code == 130 and attempts(out / "random_seed0")["status"].tolist() == ["stopped"]
    assert not (out / "random_seed0" / "summary.json").exists()
    assert not (out / "evolution_seed0").exists()
    # --dry-run tells the started search from the one never run (progress.csv is written every
    # 20 cells, so after 2 cells it has none).
    capsys.readouterr()
    assert study("--methods", "random", "evolution", "--seeds", "0", "--dry-run") == 0
    states = capsys.readouterr().out
    assert "random_seed0: partial (progress.csv: 0 of 8 cells)" in states
    assert "evolution_seed0: to run" in states

    calls.clear()
    monkeypatch.setattr(nas_env.training, "train_child", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    assert study("--methods", "random", "evolution", "--seeds", "0") == 0
    summary = json.loads((out / "random_seed0" / "summary.json").read_text())
    assert summary["sources"]["cache"] >= 2  # the two cells trained before the stop
    assert attempts(out / "random_seed0")["status"].tolist() == ["stopped", "finished"]
    assert (out / "evolution_seed0" / "summary.json").exists()
    assert "minus random" in (out / "report.md").read_text()


def test_a_training_free_study_and_the_ppo_settings_sweep(study, tmp_path, monkeypatch):
    # zc-vote made tiny: one score, one initialisation, 4 reference cells, a narrow network.
    monkeypatch.setitem(SCORE_PROTOCOLS, "zc-vote", ScoreProtocol(
        "zc-vote", ("synflow",), inits=1, batch_size=8, filters=(4, 8), fc_units=16,
        reference_cells=4))
    out = tmp_path / "study"
    assert study("--methods", "random", "--seeds", "0", "--tuning-seeds", "100",
                 "--tuning-settings", "defaults", f"small={PPO_SMALL}", protocol="zc-vote") == 0
    sweep = (out / "tuning" / "report.md").read_text()
    for name in ("defaults", "small"):
        assert (out / "tuning" / name / "ppo_seed100" / "summary.json").exists()
        assert f"| {name} " in sweep
    assert (out / "tuning" / "random" / "random_seed100" / "summary.json").exists()
    assert "epochs, updates 1-5" in sweep and "| random search " in sweep and not (out / "random_seed0").exists()
    # The reported study on the same cache: a sweep's cells replay, and a replay scores nothing.
    assert study("--methods", "random", "--seeds", "0", protocol="zc-vote") == 0
    forbid(monkeypatch, nas_env.zero_cost, "score_cell")
    (out / "random_seed0" / "summary.json").unlink()
    assert study("--methods", "random", "--seeds", "0", protocol="zc-vote") == 0
    summary = json.loads((out / "random_seed0" / "summary.json").read_text())
    assert summary["protocol"] == "zc-vote" and "training" not in summary["sources"]
    assert "training-free" in (out / "report.md").read_text()


@pytest.mark.parametrize("protocol, label", [
    ("cheap", "validation accuracy (%)"),
    ("loss12k", "late-loss score, 100 exp(-last training loss)"),
    ({**json.loads(TINY), "loss_points_per_epoch": 2, "signal": "late_loss"},
     "late-loss score, 100 exp(-last training loss)"),
    ("zc-vote", "score percentile"),
])
def test_the_report_names_what_the_reward_is(protocol, label):
    # A late-loss protocol rewards its score, not its validation accuracy; the report says so.
    assert reward_label(protocol) == label


def test_the_study_runs_seed_by_seed(tmp_path, capsys):
    # Each seed's searches come before the next seed's, so paired comparisons exist early.
    assert study_script().main(["--protocol", "cheap", "--methods", "ppo", "random",
                                "--seeds", "0-1", "--out-dir", str(tmp_path), "--dry-run"]) == 0
    listed = re.findall(r"(\w+_seed\d+): to run", capsys.readouterr().out)
    assert listed == ["ppo_seed0", "random_seed0", "ppo_seed1", "random_seed1"]


@pytest.mark.parametrize("flags, message", [
    (["--protocol", "fastest"], "--protocol 'fastest': unknown; allowed: paper, fast, cheap"),
    (["--protocol", "cheap", "--ppo-settings", "greedy"], "PPO setting 'greedy'; allowed: defaults"),
    (["--protocol", "cheap", "--ppo-settings", '{"ent": 1}'], "a JSON object of batch_size"),
    (["--protocol", "cheap", "--seeds", "a-b"], "--seeds 'a-b'; write seeds >= 0"),
    (["--protocol", "cheap", "--tuning-seeds", "3-5"], "overlap the reported --seeds"),
    (["--protocol", "cheap", "--methods", "annealing"], "invalid choice: 'annealing'"),
    (["--protocol", "cheap", "--retrain", "zc-vote"], "--retrain 'zc-vote': not a training"),
    (["--protocol", "cheap", "--tuning-seeds", "100", "--retrain", "fast"],
     "a sweep (--tuning-seeds) has none"),
    (["--protocol", "cheap", "--retrain", "fast", "--small-table", "nowhere.csv"],
     "--small-table nowhere.csv: reward table nowhere.csv does not exist"),
    (["--protocol", "cheap", "--retrain", "fast", "--small-table", str(BEST_CELLS)],
     f"--small-table {BEST_CELLS}: reward table {BEST_CELLS} lacks the columns arch_index"),
    (["--protocol", "zc-vote", "--child-device", "cpu"],
     "--child-device: protocol 'zc-vote' is training-free"),
    (["--protocol", "cheap", "--child-device", "tpu"], "'tpu' is not allowed; choose auto"),
])
def test_a_bad_flag_names_what_is_allowed(flags, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exited:
        study_script().main([*flags, "--out-dir", str(tmp_path), "--dry-run"])
    assert exited.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.skipif(nas_env.training.torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("flags, message", [
    (["--child-device", "cuda"], "--child-device cuda: this machine has no CUDA device"),
    (["--retrain", "fast", "--retrain-device", "cuda:0"],
     "--retrain-device cuda:0: this machine has no CUDA device"),
])
def test_a_cuda_device_is_refused_before_anything_trains_on_a_machine_without_one(
        study, flags, message, monkeypatch):
    forbid(monkeypatch, nas_env.training, "train_child")
    with pytest.raises(SystemExit) as exited:
        study("--methods", "random", "--seeds", "0", *flags)
    assert message in str(exited.value.code)


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
    assert f"{before + 2} runs in {out / 'large_mnist_cheap.sqlite'}" in printed  # a copy, grown
    retrained = pd.read_csv(out / "exp3_study" / "retrained_cheap.csv")
    assert retrained["seed"].tolist() == [0, 1] and set(retrained["source"]) == {"training"}
    assert set(retrained["device"]) == {"cpu"}
    assert rows_shipped() == before  # the shipped cache is only copied
    run()  # the same command again: both runs come from its cache
    assert set(pd.read_csv(out / "exp3_study" / "retrained_cheap.csv")["source"]) == {"cache"}


def test_the_paired_interval_is_students_t_over_seeds():
    result = paired_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.303
    assert result["n"] == 3 and result["mean"] == 2.0
    assert result["high"] - 2.0 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert result["low"] == pytest.approx(4.0 - result["high"])
    one = paired_interval([0.5])
    assert one["mean"] == 0.5 and np.isnan(one["low"]) and np.isnan(one["high"])
    assert last_quarter(np.arange(400)).tolist() == list(range(300, 400))
    assert last_quarter([1.0, 2.0]).tolist() == [2.0]


def test_the_best_cell_of_each_search_is_retrained_and_set_beside_the_best_a_small_cell(
        study, tmp_path, monkeypatch, capsys, synthetic_data_root):
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
    module = study_script()
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


def test_the_sweep_table_gives_each_setting_against_random_search(tmp_path):
    """Two seeds of one setting and of random search, 8 cells each, written by hand: the table's
    last-quarter mean (the last 2 cells), its difference from random search's per seed, the mean
    over all cells and the distinct cells, with random search's own row below."""
    def write(folder, rewards, archs):
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text("{}")
        pd.DataFrame({"reward": rewards, "arch": archs}).to_csv(folder / "evaluations.csv")

    cell = {letter: f"|{op}~0|{op}~0|" for letter, op in zip(
        "abcdefgh", ["conv3x3", "conv5x5", "conv7x7", "sep_conv3x3", "conv1x3_3x1", "max_pool2x2",
                     "avg_pool2x2", "identity"])}  # eight distinct 1-block cells

    def cells(letters):
        return [cell[letter] for letter in letters]

    sweep = tmp_path / "tuning"
    write(sweep / "fast" / "ppo_seed100", [0, 0, 0, 0, 10, 10, 10, 10], cells("abcdeeee"))
    write(sweep / "fast" / "ppo_seed101", [0, 0, 0, 0, 0, 0, 20, 20], cells("abcdefgg"))
    write(sweep / "random" / "random_seed100", [5] * 8, cells("abcdefgh"))
    write(sweep / "random" / "random_seed101", [1, 1, 1, 1, 1, 1, 3, 3], cells("abcdefgh"))
    table = tuning_table(sweep, {"fast": {"target_kl": None}}).set_index("setting")
    fast, random = table.loc["fast"], table.loc["random search"]
    assert fast["seeds"] == 2 and fast["last quarter"] == 15.0  # (10 + 20) / 2
    assert fast["minus random"] == pytest.approx(11.0)  # (10 - 5 + 20 - 3) / 2
    assert fast["all cells"] == pytest.approx(5.0) and fast["distinct"] == 6.0  # 5 and 7 cells
    assert "target_kl" in fast["changes"]
    assert random["seeds"] == 2 and random["last quarter"] == 4.0 and random["distinct"] == 8.0
    assert random["all cells"] == pytest.approx((5 + 1.5) / 2)


REAL_ROOT = Path(os.environ.get("NAS_ENV_DATA", ROOT.parent / "shared" / "datasets"))


@pytest.mark.mnist
@pytest.mark.skipif(not (REAL_ROOT / "MNIST" / "raw").is_dir(), reason="real MNIST files absent")
def test_the_first_rounds_ppo_search_replays_from_the_shipped_cache(tmp_path, monkeypatch):
    """reproduce_exp3.sh pins the first round's PPO settings: with them, PPO's first 100 cells
    (5 updates) all come from the shipped cache, whatever make_ppo's defaults are now."""
    from agents.ppo_sweep import FIRST_ROUND
    from nas_env.commands.search import main as search_main

    cache = tmp_path / "cheap.sqlite"
    shutil.copy(ROOT / "reward_tables" / "evaluations" / "large_mnist_cheap.sqlite", cache)
    forbid(monkeypatch, nas_env.training, "train_child")
    summary = search_main(["--method", "ppo", "--seed", "0", "--cells", "100", "--protocol", "cheap", "--cache-path",
                           str(cache), "--data-root", str(REAL_ROOT), "--out-dir", str(tmp_path),
                           "--no-checkpoints", "--ppo-settings", json.dumps(FIRST_ROUND)])
    assert summary["sources"] == {"cache": 100} and summary["ppo_config"]["ent_coef"] == 0.1
