"""Stopping batch evaluation: a stop request reaches the process workers and a rerun resumes their
runs; a live env stops before it trains; Ctrl-C keeps finished results and stops the workers;
SIGTERM to the process group saves the workers' runs; workers exit when their driver is killed.
Each interrupted search is a separate Python process running a script, as a user's would be."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest

import nas_env  # noqa: F401  (registers the ids)
from nas_env.cache import EvaluationCache
from nas_env.evaluators import LiveEvaluator
from nas_env.training import Protocol

from parallel_support import CELLS, TINY

ROOT = Path(__file__).resolve().parents[1]


def test_a_stop_request_reaches_the_process_workers_and_the_rerun_resumes_their_runs(
        synthetic_data_root, tmp_path):
    """Both running jobs save their run at the end of a step, the waiting one stops before its
    first step, the batch ends with RunStopped naming both saves, and the same batch again
    finishes every cell from there."""
    import threading

    from nas_env.run_checkpoint import (RunStopped, checkpoint_progress, clear_stop_request,
                                        request_stop)

    slow = Protocol.from_dict({**TINY.as_dict(), "epochs": 10})
    checkpoints, cache = tmp_path / "checkpoints", tmp_path / "c.sqlite"

    def evaluator() -> LiveEvaluator:
        return LiveEvaluator("large", protocol=slow, data_root=synthetic_data_root, cache=cache,
                             threads=1, backend="process", workers=2, checkpoint_dir=checkpoints)

    def stop_once_both_train() -> None:  # a run holds its lock file while it trains
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(list(checkpoints.glob("*.lock"))) < 2:
            time.sleep(0.05)
        request_stop()

    first = evaluator()
    threading.Thread(target=stop_once_both_train, daemon=True).start()
    try:
        with pytest.raises(RunStopped, match="2 runs saved their state"):
            first.evaluate_batch(CELLS)
    finally:
        first.close()
        clear_stop_request()
    saved = checkpoint_progress(checkpoints)
    assert len(saved) == 2 and all(0 < run["step"] < run["total_steps"] for run in saved)
    assert len(EvaluationCache(cache)) == 0

    second = evaluator()
    try:
        results = second.evaluate_batch(CELLS)
    finally:
        second.close()
    assert [r["source"] for r in results] == ["training"] * 3
    assert all(r["failure"] is None and r["validation_accuracy"] > 50 for r in results)
    assert not list(checkpoints.glob("*.pt"))  # each resumed run finished and removed its file


def test_a_live_env_stops_before_training_once_a_stop_is_requested(synthetic_data_root,
                                                                   tmp_path):
    import pickle

    from nas_env.run_checkpoint import RunStopped, clear_stop_request, request_stop

    env = gym.make("NASCell-large-v0", blocks=2, protocol=TINY, data_root=synthetic_data_root,
                   cache_path=tmp_path / "c.sqlite", checkpoint_dir=tmp_path / "checkpoints")
    env.reset(seed=0)
    request_stop()
    try:
        with pytest.raises(RunStopped, match="before its first step") as stopped:
            env.step(CELLS[0].to_action())
    finally:
        clear_stop_request()
        env.close()
    assert len(EvaluationCache(tmp_path / "c.sqlite")) == 0
    again = pickle.loads(pickle.dumps(stopped.value))  # how a worker sends it back
    assert (str(again), again.path, again.total_steps) == (
        str(stopped.value), stopped.value.path, stopped.value.total_steps)

INTERRUPTED_SEARCH = """
import json, os, signal, sys, threading, time
# A Python started from a background job of a non-interactive shell (nohup ... &) inherits SIGINT
# ignored and keeps it so; a user's Ctrl-C reaches one with the default handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from parallel_support import CELLS, TINY
from nas_env.evaluators import LiveEvaluator
from nas_env.hardware import cpu_name
from nas_env.spaces import LargeCell
from nas_env.training import Protocol

slow = Protocol.from_dict({{**TINY.as_dict(), "epochs": 25}})
cells = CELLS + [LargeCell([(0, 0, op, "identity"), (1, 0, "conv3x3", "identity")])
                 for op in ("conv5x5", "conv7x7", "avg_pool2x2")]
evaluator = LiveEvaluator("large", protocol=slow, data_root={root!r}, cache={cache!r}, threads=1,
                          backend="process", workers=2)
def report_pids():
    while True:
        with open({pids!r} + ".tmp", "w") as f:
            json.dump(evaluator.backend.worker_pids(), f)
        os.replace({pids!r} + ".tmp", {pids!r})  # the test never reads half a file
        time.sleep(0.2)
threading.Thread(target=report_pids, daemon=True).start()
try:
    results = evaluator.evaluate_batch(cells)
except KeyboardInterrupt:
    sys.exit(130)
print(json.dumps([r["source"] for r in results]))
"""


def _stored_rows(cache: Path) -> int:
    """Rows in the search's cache, read through a read-only connection: the test must not
    create the schema or switch the journal mode under the search that is writing it."""
    if not cache.exists():
        return 0
    conn = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1)
    try:
        return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # no table yet, or locked for a moment
        return 0
    finally:
        conn.close()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


def test_ctrl_c_keeps_finished_results_stops_workers_and_a_rerun_continues(synthetic_data_root,
                                                                           tmp_path):
    cache = tmp_path / "c.sqlite"
    script = INTERRUPTED_SEARCH.format(tests=str(ROOT / "tests"), root=str(synthetic_data_root),
                                       cache=str(cache), pids=str(tmp_path / "pids.json"))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if _stored_rows(cache) >= 1:
            break
        time.sleep(0.1)
    pids = json.loads((tmp_path / "pids.json").read_text())
    assert proc.poll() is None, f"the search ended before the interrupt: {proc.communicate()}"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    finished = list(EvaluationCache(cache).rows())
    assert 1 <= len(finished) < 6  # interrupted mid-batch
    assert all(row["result"]["validation_accuracy"] >= 0 for row in finished)
    time.sleep(1)
    assert pids and not any(_alive(p) for p in pids)

    rerun = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    sources = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert sources.count("cache") == len(finished) and sources.count("training") == 6 - len(finished)


def test_workers_exit_when_their_driver_is_killed(synthetic_data_root, tmp_path):
    cache = tmp_path / "c.sqlite"
    pids_file = tmp_path / "pids.json"
    script = INTERRUPTED_SEARCH.format(tests=str(ROOT / "tests"), root=str(synthetic_data_root),
                                       cache=str(cache), pids=str(pids_file))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    pids: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None and len(pids) < 2:
        if pids_file.exists():
            pids = json.loads(pids_file.read_text())
        time.sleep(0.1)
    assert len(pids) == 2 and proc.poll() is None
    proc.kill()  # SIGKILL: the driver cannot shut its pool down
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


# --- the vectorized env -----------------------------------------------------------------------

TERMINATED_SEARCH = """
import sys
sys.path.insert(0, {tests!r})
from parallel_support import CELLS, TINY
from nas_env.evaluators import LiveEvaluator
from nas_env.hardware import cpu_name
from nas_env.run_checkpoint import stop_on_signals
from nas_env.training import Protocol

slow = Protocol.from_dict({{**TINY.as_dict(), "epochs": 60}})
evaluator = LiveEvaluator("large", protocol=slow, data_root={root!r}, cache={cache!r}, threads=1,
                          backend="process", workers=2, checkpoint_dir={checkpoints!r})
with stop_on_signals(program="search"):
    evaluator.evaluate_batch(CELLS[:2])
"""


def test_sigterm_to_the_process_group_saves_the_workers_runs(synthetic_data_root, tmp_path):
    """What timeout, systemd and SLURM do: SIGTERM to the driver and its pool workers at once.
    Each worker saves its run at the end of its step, and the driver exits as on SIGTERM."""
    from nas_env.run_checkpoint import checkpoint_progress, run_in_progress

    checkpoints, cache = tmp_path / "checkpoints", tmp_path / "c.sqlite"
    script = TERMINATED_SEARCH.format(tests=str(ROOT / "tests"), root=str(synthetic_data_root),
                                      cache=str(cache), checkpoints=str(checkpoints))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(checkpoints.glob("*.lock"))) < 2:
        time.sleep(0.1)
    locks = list(checkpoints.glob("*.lock"))
    while time.monotonic() < deadline and not all(
            run_in_progress(lock.with_suffix("")) for lock in locks):
        time.sleep(0.1)
    time.sleep(2)  # well into both runs
    assert proc.poll() is None, f"the search ended before the signal: {proc.communicate()}"
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    saved = checkpoint_progress(checkpoints)
    assert len(saved) == 2 and all(run["step"] > 0 for run in saved), err
    assert "before its first step" not in err
    assert len(EvaluationCache(cache)) == 0
