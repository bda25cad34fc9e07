"""The main job end to end: a short PPO search on the fixture table, its logs and its figure."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nas_env.spaces import SmallCell

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "small_fixture.csv"


def run_script(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    stdout = run_script("experiments/train_ppo.py", "--iterations", "4", "--out-dir", str(out),
                        "--env-kwargs", json.dumps({"table_path": str(FIXTURE)}),
                        "--exp-name", "smoke")
    (run,) = list(out.iterdir())
    assert str(run) in stdout and "best cell" in stdout
    # No terminal here: progress is a few log lines, not a tqdm bar's history.
    assert "iteration 4/4: batch mean" in stdout and "\r" not in stdout
    return run


def test_run_is_named_like_cleanrl(run_dir):
    env_id, exp, seed, stamp = run_dir.name.split("__")
    assert (env_id, exp, seed) == ("NASCell-small-v0", "smoke", "0") and stamp.isdigit()


def test_tensorboard_holds_the_named_tags(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir)).Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in ("charts/reward_mean", "charts/reward_min", "charts/reward_max", "charts/reward_std",
                "charts/best_reward", "charts/distinct_archs", "charts/optimum_probability",
                "train/policy_gradient_loss", "train/value_loss", "train/approx_kl"):
        assert tag in scalars, tag
    # The charts' step is the iteration, as in the README's figures (SB3's train/ use timesteps).
    assert [e.step for e in events.Scalars("charts/reward_mean")] == [1, 2, 3, 4]
    assert "hyperparameters/text_summary" in events.Tags()["tensors"]


def test_csv_and_summary_agree(run_dir):
    table = pd.read_csv(run_dir / "iterations.csv")
    assert table["iteration"].tolist() == [1, 2, 3, 4]
    assert (table["reward_min"] <= table["reward_mean"]).all()
    assert (table["reward_mean"] <= table["reward_max"]).all()
    assert table["optimum_probability"].between(0, 1).all()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_reward"] == pytest.approx(table["reward_max"].max())
    assert summary["optimum_reward"] is not None and summary["iterations"] == 4
    # Where the run ends: the greedy cell, and whether it is the table's optimum.
    assert SmallCell.from_string(summary["greedy_arch"]).to_string() == summary["greedy_arch"]
    assert summary["greedy_is_optimum"] == (summary["greedy_arch"] == summary["optimum_arch"])
    assert 0.0 <= summary["final_optimum_probability"] <= 1.0
    assert (run_dir / "model.zip").is_file() and (run_dir / "rewards.png").is_file()


def test_plot_script_turns_runs_into_a_png(run_dir, tmp_path):
    out = tmp_path / "fig.png"
    run_script("experiments/plot_rewards.py", str(run_dir.parent), "--aggregate", "--out", str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("backend", ["inline", "ray"])
def test_a_short_live_search_on_a_large_env(tmp_path, synthetic_data_root, backend):
    """Two iterations of PPO on NASCell-large-v0 training tiny children: logs and summary work
    without a known optimum, and say how many samples the cache answered; the same through a
    local Ray with 2 workers."""
    if backend == "ray":
        pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    tiny = {"name": "tiny", "epochs": 1, "lr": 0.01, "schedule": "onecycle", "batch_size": 64,
            "checkpoints_per_epoch": 1, "filters": [4, 8], "fc_units": 16, "precision": "fp32"}
    env_kwargs = {"blocks": 1, "protocol": tiny, "data_root": str(synthetic_data_root),
                  "threads": 1}
    stdout = run_script("experiments/train_ppo.py", "--env-id", "NASCell-large-v0",
                        "--iterations", "2", "--archs-per-iter", "6", "--out-dir", str(tmp_path),
                        "--cache-path", str(tmp_path / "cache.sqlite"), "--no-progress",
                        "--env-kwargs", json.dumps(env_kwargs), "--backend", backend,
                        *(["--workers", "2"] if backend == "ray" else []))
    assert "the optimum is unknown (live evaluation)" in stdout
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 2 and summary["samples"] == 12
    assert summary["optimum_reward"] is None and summary["first_hit_iteration"] is None
    # A 1-block cell space is small (64 canonical cells), so some of the 12 samples repeat.
    assert summary["cache_hits"] == 12 - summary["distinct_archs"]
    assert summary["simulated_training_seconds"] > 0 and summary["backend"] == backend
    table = pd.read_csv(run / "iterations.csv")
    assert table["cache_hits"].iloc[-1] == summary["cache_hits"]


def test_backend_flags_on_a_table_search_are_refused_with_the_reason():
    done = subprocess.run([sys.executable, "experiments/train_ppo.py", "--backend", "process"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "--backend and --workers apply to live searches" in done.stderr


@pytest.mark.parametrize("command", [
    ["experiments/train_ppo.py", "--env-id", "NASCell-large-v0", "--iterations", "1"],
    ["experiments/search_large.py", "--method", "random", "--cells", "2"],
])
def test_a_live_search_without_its_dataset_says_so_in_one_line_and_writes_nothing(
        tmp_path, command):
    import os

    empty = tmp_path / "no_data"
    empty.mkdir()
    done = subprocess.run([sys.executable, *command, "--out-dir", str(tmp_path / "out")],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NAS_ENV_DATA": str(empty)})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "MNIST/raw" in done.stderr
    assert not (tmp_path / "out").exists() and list(empty.iterdir()) == []


def test_a_search_that_fails_before_its_first_iteration_leaves_no_run_folder(
        tmp_path, synthetic_data_root, monkeypatch):
    import importlib.util

    import nas_env.training

    spec = importlib.util.spec_from_file_location("train_ppo_script", ROOT / "experiments" / "train_ppo.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def broken(*args, **kwargs):
        raise RuntimeError("the first training run failed")
    monkeypatch.setattr(nas_env.training, "train_child", broken)
    tiny = {"name": "tiny", "epochs": 1, "lr": 0.01, "schedule": "onecycle", "batch_size": 64,
            "checkpoints_per_epoch": 1, "filters": [4, 8], "fc_units": 16, "precision": "fp32"}
    args = script.build_parser().parse_args([
        "--env-id", "NASCell-large-v0", "--iterations", "1", "--archs-per-iter", "2",
        "--cache-path", str(tmp_path / "cache.sqlite"), "--no-progress", "--env-kwargs",
        json.dumps({"blocks": 1, "protocol": tiny, "data_root": str(synthetic_data_root),
                    "threads": 1})])
    run_dir = tmp_path / "runs" / "NASCell-large-v0__ppo_val__0__1"
    with pytest.raises(RuntimeError, match="the first training run failed"):
        script.run_one(args, 0, run_dir, progress=False)
    assert not run_dir.exists()


def test_finished_iterations_are_on_disk_while_the_search_runs(tmp_path):
    """A search killed mid-run keeps every finished iteration: each row reaches the file when
    its iteration ends, not when the search does."""
    import gymnasium as gym
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    import nas_env  # noqa: F401
    from agents.callbacks import SearchProgressCallback
    from agents.ppo_search import make_ppo

    csv_path = tmp_path / "iterations.csv"
    rows_seen = []

    class ReadFileAtRolloutStart(BaseCallback):
        def _on_rollout_start(self) -> None:
            rows_seen.append(len(pd.read_csv(csv_path)))

        def _on_step(self) -> bool:
            return True

    model = make_ppo(gym.make("NASCell-small-v0", table_path=str(FIXTURE)), seed=0)
    progress = SearchProgressCallback(csv_path, progress=False, total_iterations=3)
    model.learn(3 * 20, callback=CallbackList([progress, ReadFileAtRolloutStart()]))
    assert rows_seen == [0, 1, 2]
    assert pd.read_csv(csv_path)["iteration"].tolist() == [1, 2, 3]
    assert progress._csv_file is None  # closed when the search ended
