"""Experiment 3's tooling: a live search's log, its summary, the report and the cell drawing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.search_report import (
    best_cells, load_searches, mean_difference, op_counts, op_entropy, per_iteration,
    search_summary)
from nas_env.drawing import draw_cell
from nas_env.spaces import LargeCell

ROOT = Path(__file__).resolve().parents[1]


def fake_search(folder: Path, rewards, seed: int = 0) -> pd.DataFrame:
    """A search_large.py log of random 2-block cells (a small space, so some repeat)."""
    rng = np.random.default_rng(seed)
    cells = [LargeCell.from_action(rng.integers(LargeCell.action_nvec(2)).tolist()) for _ in rewards]
    seen, rows = set(), []
    for i, (cell, reward) in enumerate(zip(cells, rewards)):
        rows.append({"evaluation": i + 1, "reward": reward, "repeat": cell.key in seen,
                     "arch": cell.to_string(), "arch_key": cell.key, "validation_accuracy": reward,
                     "test_accuracy": reward, "training_time": 10.0, "trainable_parameters": 1000 + i,
                     "cell_parameters": 100 + i, "flops": 1, "failure": None, "source": "training"})
        seen.add(cell.key)
    frame = pd.DataFrame(rows)
    folder.mkdir(parents=True)
    frame.to_csv(folder / "evaluations.csv", index=False)
    return frame


def test_a_search_summary_counts_repeats_and_charges_only_distinct_cells():
    frame = pd.DataFrame({"evaluation": [1, 2, 3, 4], "reward": [90.0, 95.0, 95.0, 80.0],
                          "repeat": [False, False, True, False], "arch": ["a", "b", "b", "c"],
                          "training_time": [3600.0, 1800.0, 1800.0, 1800.0]})
    summary = search_summary(frame, window=2)
    assert (summary["sampled"], summary["distinct"], summary["repeats"]) == (4, 3, 1)
    assert summary["training_hours"] == pytest.approx(2.0)
    assert summary["mean_first"] == 92.5 and summary["mean_last"] == 87.5
    assert (summary["best_arch"], summary["best_at"]) == ("b", 2)


def test_per_iteration_statistics_drop_a_partial_last_batch():
    stats = per_iteration(np.arange(45, dtype=float), size=20)
    assert stats["iteration"].tolist() == [1, 2]
    assert stats["mean"].tolist() == [9.5, 29.5] and stats["max"].tolist() == [19.0, 39.0]


def test_the_best_cells_are_distinct_and_best_first(tmp_path):
    fake_search(tmp_path / "ppo_seed0", np.linspace(90, 96, 60))
    fake_search(tmp_path / "random_seed0", np.linspace(91, 95, 60), seed=1)
    evaluations = load_searches(tmp_path)
    top = best_cells(evaluations, 5)
    assert top["arch_key"].is_unique and top["reward"].is_monotonic_decreasing
    assert top.loc[0, "reward"] == 96.0 and top.loc[0, "search"] == "ppo_seed0"
    bottom = best_cells(evaluations, 5, worst=True)
    assert bottom["arch_key"].is_unique and bottom["reward"].is_monotonic_increasing
    assert bottom.loc[0, "reward"] == 90.0 and bottom.loc[0, "search"] == "ppo_seed0"
    assert not set(bottom["arch_key"]) & set(top["arch_key"])


def test_the_report_writes_its_figures_and_tables(tmp_path):
    runs, figures = tmp_path / "runs", tmp_path / "figures"
    fake_search(runs / "ppo_seed0", np.linspace(90, 96, 60))
    fake_search(runs / "evolution_seed0", np.linspace(91, 95, 60), seed=1)
    fake_search(runs / "random_seed0", np.full(60, 93.0), seed=2)
    for picked, search_reward, new in (("top", 96.0, 93.0), ("bottom", 90.0, 94.0)):
        pd.DataFrame({"picked": picked, "rank": [1, 2], "arch": ["a", "b"], "seed": 1,
                      "validation_accuracy": [new, new + 1], "search_reward": search_reward,
                      "found_by": "ppo_seed0"}).to_csv(
            runs / f"retrained_cheap{'' if picked == 'top' else '_bottom'}.csv", index=False)
    pd.DataFrame({"picked": "top", "rank": [1, 1, 2], "arch": ["a", "a", "b"], "seed": [0, 1, 0],
                  "validation_accuracy": [98.0, 99.0, 97.0], "test_accuracy": [98.5, 99.5, 97.0],
                  "training_time": 5.0, "trainable_parameters": 7, "flops": [1000, 1000, 20],
                  "precision": "fp32", "search_reward": [96.0, 96.0, 95.0],
                  "found_by": "ppo_seed0"}).to_csv(runs / "retrained_fast.csv", index=False)
    done = subprocess.run([sys.executable, "experiments/report_exp3.py", "--runs", str(runs),
                           "--figures", str(figures)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    against = done.stdout.split("## Against the paper and A_small")[1].split("##")[0]
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in against.splitlines()
             if line.startswith("|") and not line.startswith("|:")]
    assert lines[1][:3] == ["paper's best A_large cell (Table 3)", "41.41", "42.97"]
    assert lines[2][0].startswith("best A_small cell <5x5 conv, 3x3 dconv>")  # the shipped table's
    assert lines[3][:5] == ["A_large rank 1 (cheap reward 96.00)", "98.50", "99.00", "0, 1", "1,000"]
    assert lines[4][:4] == ["A_large rank 2 (cheap reward 95.00)", "97.00", "97.00", "0"]
    assert {p.name for p in figures.iterdir()} == {
        "exp3_ppo_rewards.png", "exp3_searchers.png", "exp3_best_cell.png"}
    assert "## Five best cells" in done.stdout and "regularized evolution" in done.stdout
    best = done.stdout.split("## Five best cells")[1].split("##")[0]
    header = next(line for line in best.splitlines() if line.startswith("| arch"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "arch", "reward", "trainable_parameters", "cell_parameters", "flops", "search", "evaluation"]
    reseed = done.stdout.split("under another training seed")[1]
    assert "| top 2 by search reward" in reseed and "93.50" in reseed and "94.50" in reseed
    assert "all 180 sampled" in reseed
    against_random = done.stdout.split("minus random search's")[1].split("##")[0]
    assert "| PPO (autoregressive LSTM) |" in against_random and "random search |" not in against_random
    ops = done.stdout.split("## Ops chosen in the last 100 cells")[1].split("##")[0]
    assert "| identity " in ops and "random search (seed 0)" in ops


def test_the_cell_drawing_names_every_op_input_and_the_output():
    cell = LargeCell([(0, 0, "conv3x3", "max_pool2x2"), (1, 0, "identity", "sep_conv3x3")])
    fig = draw_cell(cell)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "3x3 conv\n(h0)" in texts and "identity\n(h1)" in texts and "3x3 dconv\n(h0)" in texts
    assert "cell output: concat(h2), 1x1 conv" in texts


def test_a_live_search_logs_every_cell_and_resumes_from_its_cache(tmp_path, synthetic_data_root):
    args = [sys.executable, "experiments/search_large.py", "--method", "evolution", "--cells", "4",
            "--blocks", "1", "--protocol", "cheap", "--data-root", str(synthetic_data_root),
            "--cache-path", str(tmp_path / "c.sqlite"), "--threads", "1", "--out-dir", str(tmp_path)]
    first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("(cache,") == 4  # the same seed samples the same cells
    log = pd.read_csv(tmp_path / "evolution_seed0" / "evaluations.csv")
    summary = json.loads((tmp_path / "evolution_seed0" / "summary.json").read_text())
    assert len(log) == 4 and summary["sampled"] == 4
    assert summary["best_reward"] == log["reward"].max()
    assert summary["distinct"] + summary["repeats"] == 4


def test_retraining_takes_the_best_or_the_worst_cells_and_caches_them(tmp_path, synthetic_data_root):
    runs = tmp_path / "runs"
    fake_search(runs / "ppo_seed0", np.linspace(90, 96, 12))
    base = [sys.executable, "experiments/retrain_cells.py", "--runs", str(runs), "--protocol",
            "cheap", "--seeds", "1", "--data-root", str(synthetic_data_root), "--threads", "1",
            "--cache-path", str(tmp_path / "c.sqlite")]
    for pick in ("--top", "--bottom"):
        done = subprocess.run(base + [pick, "2"], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    top = pd.read_csv(runs / "retrained_cheap.csv")
    bottom = pd.read_csv(runs / "retrained_cheap_bottom.csv")
    assert top["picked"].eq("top").all() and bottom["picked"].eq("bottom").all()
    assert top["search_reward"].iloc[0] == 96.0 and top["search_reward"].is_monotonic_decreasing
    assert bottom["search_reward"].iloc[0] == 90.0 and bottom["search_reward"].is_monotonic_increasing
    assert top["search_reward"].min() > bottom["search_reward"].max()
    assert (top["seed"] == 1).all() and top["validation_accuracy"].between(0, 100).all()
    # Run again: every (cell, seed) comes from the cache.
    again = subprocess.run(base + ["--top", "2"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and again.stdout.count("(cache,") == 2
    # A retraining under way is reported from the cache alone: the third cell was never trained.
    partial = subprocess.run(base + ["--top", "3", "--cached-only"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert partial.returncode == 0, partial.stderr[-2000:]
    assert "not in the cache yet (1 of 3 runs): cell 3 seed 1" in partial.stdout
    assert "(training," not in partial.stdout
    assert pd.read_csv(runs / "retrained_cheap.csv")["rank"].tolist() == [1, 2]


def test_op_entropy_is_log8_for_uniform_ops_and_zero_for_one_op():
    ops = ["conv1x3_3x1", "conv3x3", "sep_conv3x3", "conv5x5", "conv7x7", "max_pool2x2",
           "avg_pool2x2", "identity"]
    uniform = [LargeCell([(0, 0, ops[i], ops[i + 1])]).to_string() for i in (0, 2, 4, 6)]
    assert op_entropy(uniform) == pytest.approx(np.log(8))
    single = LargeCell([(0, 0, "conv3x3", "conv3x3"), (1, 0, "conv3x3", "conv3x3")]).to_string()
    assert op_entropy([single, single]) == 0.0
    half = [LargeCell([(0, 0, "conv3x3", "identity")]).to_string()]
    assert op_entropy(half) == pytest.approx(np.log(2))
    counts = op_counts([single, half[0]])
    assert list(counts.index) == ops and counts.sum() == 6
    assert counts["conv3x3"] == 5 and counts["identity"] == 1 and counts["conv7x7"] == 0


def test_a_mean_difference_brackets_the_difference_and_narrows_with_more_rewards():
    rng = np.random.default_rng(0)
    small = mean_difference(rng.normal(1.0, 1.0, 20), rng.normal(0.0, 1.0, 20))
    large = mean_difference(rng.normal(1.0, 1.0, 2000), rng.normal(0.0, 1.0, 2000))
    for result in (small, large):
        assert result["low"] < result["difference"] < result["high"]
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 5
    assert large["low"] < 1.0 < large["high"]
    assert mean_difference([1.0, 3.0], [1.0, 3.0]) == {"difference": 0.0, "low": pytest.approx(-1.96 * 2 ** 0.5),
                                                        "high": pytest.approx(1.96 * 2 ** 0.5)}
    with pytest.raises(ValueError, match="at least 2"):
        mean_difference([1.0], [1.0, 2.0])
