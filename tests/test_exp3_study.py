"""Experiment 3's second round (``experiments/exp3_study.py``): several seeds per searcher on tiny
1-block cells and synthetic data, the report with the difference from random search, resuming,
replaying from the cache without training, the PPO settings sweep, and the flags' errors (the
best cells retrained: ``test_exp3_retrain.py``)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nas_env.training
import nas_env.zero_cost
from agents.study_report import (against_random, last_quarter, paired_interval, reward_label,
                                 tuning_table, update_log)
from nas_env.protocols import SCORE_PROTOCOLS, ScoreProtocol

from exp3_support import ROOT, TINY, forbid

PPO_SMALL = json.dumps({"n_steps": 4, "batch_size": 4})
BEST_CELLS = ROOT / "docs" / "data" / "exp3_study" / "fashion_mnist_loss12k_best_cells.csv"
"""A CSV that is not a reward table."""


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


def test_the_study_runs_seed_by_seed(tmp_path, capsys, load_script):
    # Each seed's searches come before the next seed's, so paired comparisons exist early.
    assert load_script("exp3_study").main(["--protocol", "cheap", "--methods", "ppo", "random",
                                           "--seeds", "0-1", "--out-dir", str(tmp_path),
                                           "--dry-run"]) == 0
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
def test_a_bad_flag_names_what_is_allowed(flags, message, capsys, tmp_path, load_script):
    with pytest.raises(SystemExit) as exited:
        load_script("exp3_study").main([*flags, "--out-dir", str(tmp_path), "--dry-run"])
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


def test_the_paired_interval_is_students_t_over_seeds():
    result = paired_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.303
    assert result["n"] == 3 and result["mean"] == 2.0
    assert result["high"] - 2.0 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert result["low"] == pytest.approx(4.0 - result["high"])
    one = paired_interval([0.5])
    assert one["mean"] == 0.5 and np.isnan(one["low"]) and np.isnan(one["high"])
    assert last_quarter(np.arange(400)).tolist() == list(range(300, 400))
    assert last_quarter([1.0, 2.0]).tolist() == [2.0]


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
