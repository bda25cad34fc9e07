"""Batch evaluation: NASBatchVecEnv, the inline / process / ray backends, dedup, cache, faults.

Synthetic IDX data and a tiny deterministic protocol, one torch thread everywhere, so every
backend must give the same numbers. The Ray tests start a local Ray with 2 CPUs once per module
and are skipped only when Ray is not installed (``pip install -e '.[ray]'``).
"""

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
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback

import nas_env  # noqa: F401  (registers the ids)
import nas_env.training
from agents.ppo_search import make_ppo
from nas_env.cache import EvaluationCache
from nas_env.evaluators import LiveEvaluator
from nas_env.hardware import cpu_name
from nas_env.parallel import InlineBackend, ProcessBackend, make_backend
from nas_env.spaces import LargeCell
from nas_env.training import Protocol
from nas_env.vec_env import NASBatchVecEnv

FAULTS = str(Path(__file__).resolve().parent / "fault_injection")
"""Put on a worker's PYTHONPATH with KILL_VARIABLE set, it kills training runs (see there)."""
KILL_VARIABLE = "NAS_ENV_TEST_KILL_WORKER"


def inject_faults(monkeypatch, target: str) -> None:
    """Make the training processes this test starts die as its ``target`` says."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [FAULTS,
                                                                   os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(KILL_VARIABLE, target)


ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "small_fixture.csv"
TINY = Protocol("tiny", epochs=2, lr=1e-2, schedule="onecycle", batch_size=32,
                checkpoints_per_epoch=1, filters=(4, 8), fc_units=32, precision="fp32")
CELLS = [
    LargeCell([(0, 0, "conv3x3", "max_pool2x2"), (1, 0, "identity", "sep_conv3x3")]),
    LargeCell([(0, 0, "conv5x5", "identity"), (0, 1, "avg_pool2x2", "conv3x3")]),
    LargeCell([(0, 0, "sep_conv3x3", "sep_conv3x3"), (1, 1, "conv1x3_3x1", "max_pool2x2")]),
]
# CELLS[0] with its first block's two (input, op) pairs swapped: another string, the same cell.
SWAPPED = LargeCell([(0, 0, "max_pool2x2", "conv3x3"), (1, 0, "identity", "sep_conv3x3")])
MEASURED = ("validation_accuracy", "test_accuracy", "val_curve", "trainable_parameters")


def live(root, cache, backend="inline", workers=None) -> LiveEvaluator:
    return LiveEvaluator("large", protocol=TINY, data_root=root, cache=cache, threads=1,
                         backend=backend, workers=workers)


def measured(result: dict) -> dict:
    return {k: result[k] for k in MEASURED}


def count_trainings(monkeypatch) -> list:
    calls = []
    original = nas_env.training.train_child

    def counted(cell, *args, **kwargs):
        calls.append(cell.key)
        return original(cell, *args, **kwargs)
    monkeypatch.setattr(nas_env.training, "train_child", counted)
    return calls


@pytest.fixture(scope="module")
def reference(synthetic_data_root, tmp_path_factory) -> list[dict]:
    """Each of CELLS trained inline, one after another: what every backend must reproduce."""
    evaluator = live(synthetic_data_root, False)
    results = evaluator.evaluate_batch(CELLS)
    evaluator.close()
    return [measured(r) for r in results]


def test_a_batch_trains_each_distinct_cell_once_in_the_batch_order(synthetic_data_root, tmp_path,
                                                                   monkeypatch, reference):
    calls = count_trainings(monkeypatch)
    evaluator = live(synthetic_data_root, tmp_path / "c.sqlite")
    batch = [CELLS[0], CELLS[1], CELLS[0], CELLS[2], SWAPPED]
    results = evaluator.evaluate_batch(batch)
    assert sorted(calls) == sorted(c.key for c in CELLS)  # five samples, three trainings
    assert [r["arch"] for r in results] == [c.to_string() for c in batch]
    assert [r["source"] for r in results] == ["training", "training", "cache", "training", "cache"]
    assert [measured(r) for r in results] == [reference[0], reference[1], reference[0],
                                              reference[2], reference[0]]
    assert len(evaluator.cache) == 3


def test_a_batch_answers_cached_cells_without_training(synthetic_data_root, tmp_path, monkeypatch):
    cache = tmp_path / "c.sqlite"
    live(synthetic_data_root, cache).evaluate_batch(CELLS[:2])
    calls = count_trainings(monkeypatch)
    results = live(synthetic_data_root, cache).evaluate_batch([CELLS[1], CELLS[2], CELLS[0]])
    assert calls == [CELLS[2].key]
    assert [r["source"] for r in results] == ["cache", "training", "cache"]


def test_the_process_backend_gives_the_inline_numbers_from_its_workers(synthetic_data_root,
                                                                       tmp_path, reference):
    evaluator = live(synthetic_data_root, tmp_path / "c.sqlite", backend="process", workers=2)
    try:
        results = evaluator.evaluate_batch([CELLS[2], CELLS[0], CELLS[1], CELLS[2]])
        pids = evaluator.backend.worker_pids()
    finally:
        evaluator.close()
    assert [measured(r) for r in results] == [reference[2], reference[0], reference[1], reference[2]]
    workers = {r["worker"] for r in results}
    assert len(workers) <= 2
    assert str(os.getpid()) not in {w.split(":")[-1] for w in workers}
    assert {int(w.split(":")[-1]) for w in workers} <= set(pids)
    assert all(r["run_seconds"] > 0 and r["wait_seconds"] >= 0 for r in results[:3])
    # Each record names what trained it, with the worker's threads, whichever process it was.
    assert {(r["hardware"], r["threads"]) for r in results} == {(cpu_name(), 1)}
    assert len(EvaluationCache(tmp_path / "c.sqlite")) == 3  # the driver wrote each once


def test_a_killed_process_worker_is_retried(synthetic_data_root, tmp_path, monkeypatch, reference):
    marker = tmp_path / "killed"
    inject_faults(monkeypatch, str(marker))  # the first job's worker dies (SIGKILL)
    evaluator = live(synthetic_data_root, tmp_path / "c.sqlite", backend="process", workers=2)
    try:
        results = evaluator.evaluate_batch(CELLS)
    finally:
        evaluator.close()
    assert marker.exists()
    assert [r["failure"] for r in results] == [None, None, None]
    assert [measured(r) for r in results] == reference


def test_a_job_whose_worker_always_dies_fails_uncached_and_the_search_goes_on(
        synthetic_data_root, tmp_path, monkeypatch):
    inject_faults(monkeypatch, "always")
    env = gym.make("NASCell-large-v0", blocks=2, protocol=TINY, data_root=synthetic_data_root,
                   cache_path=tmp_path / "c.sqlite",
                   backend=ProcessBackend(workers=1, threads=1, max_retries=1))
    env.reset(seed=0)
    try:
        _, reward, terminated, _, info = env.step(CELLS[0].to_action())
    finally:
        env.close()
    assert terminated and reward == 0.0  # r_val: a failure scores an accuracy of 0
    assert info["failure"].startswith("worker_lost: the worker process died 2 times")
    assert len(EvaluationCache(tmp_path / "c.sqlite")) == 0



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
from test_parallel import CELLS, TINY
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

def test_the_batch_env_steps_a_whole_batch_like_the_single_env():
    venv = NASBatchVecEnv("NASCell-small-v0", n_envs=4, table_path=str(FIXTURE))
    single = gym.make("NASCell-small-v0", table_path=str(FIXTURE))
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (4, 1)
    actions = np.array([[0, 1], [5, 5], [1, 0], [0, 1]])
    venv.step_async(actions)
    obs, rewards, dones, infos = venv.step_wait()
    assert dones.all() and obs.shape == (4, 1)
    for action, reward, info in zip(actions, rewards, infos):
        single.reset(seed=0)
        _, expected, _, _, expected_info = single.step(action)
        assert reward == pytest.approx(expected) and info["arch"] == expected_info["arch"]
        assert "terminal_observation" in info and info["TimeLimit.truncated"] is False
    assert venv.total_training_time == pytest.approx(sum(i["training_time"] for i in infos))
    assert len({id(b.evaluator) for b in venv.bases}) == 1
    venv.close()


def test_the_batch_env_skips_cells_over_an_r_param_budget(synthetic_data_root, monkeypatch):
    calls = count_trainings(monkeypatch)
    venv = NASBatchVecEnv("NASCell-large-v0", n_envs=2, blocks=2, protocol=TINY,
                          data_root=synthetic_data_root, cache_path=":memory:", threads=1,
                          reward="param", budget=1_000_000)
    venv.reset()
    small, large = CELLS[0], LargeCell([(0, 0, "conv7x7", "conv7x7"), (1, 1, "conv7x7", "conv7x7")])
    venv.step_async(np.array([large.to_action(), small.to_action()]))
    _, rewards, _, infos = venv.step_wait()
    assert calls == [small.key]
    assert [p["source"] for p in venv.get_attr("last_provenance")] == ["skipped", "training"]
    assert infos[0]["budget_met"] is False and rewards[0] == -100
    assert rewards[1] == pytest.approx(infos[1]["validation_accuracy"])


def test_the_batch_env_refuses_a_token_by_token_env():
    with pytest.raises(ValueError, match="NASCellSeq-small-v0 is not a one-step"):
        NASBatchVecEnv("NASCellSeq-small-v0", n_envs=2, table_path=str(FIXTURE))


def test_a_backend_asked_for_wrongly_names_what_is_allowed():
    with pytest.raises(ValueError, match="allowed: inline, process, ray"):
        make_backend("threads")
    with pytest.raises(ValueError, match="needs backend='process' or 'ray'"):
        make_backend("inline", workers=4)
    with pytest.raises(ValueError, match="workers=0"):
        make_backend("process", workers=0)
    with pytest.raises(ValueError, match="set them on the backend instance"):
        make_backend(InlineBackend(), workers=2)


def test_the_ray_backend_without_ray_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
        make_backend("ray")


# --- Ray --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _system_config={"worker_niceness": 0})
    yield ray
    ray.shutdown()


def test_the_ray_backend_gives_the_inline_numbers_in_order_once_per_cell(local_ray,
                                                                        synthetic_data_root,
                                                                        tmp_path, reference):
    from nas_env.parallel import RayBackend

    cache = tmp_path / "c.sqlite"
    evaluator = live(synthetic_data_root, cache, backend=RayBackend())
    results = evaluator.evaluate_batch([CELLS[1], CELLS[0], CELLS[1], CELLS[2]])
    assert [measured(r) for r in results] == [reference[1], reference[0], reference[1], reference[2]]
    assert [r["source"] for r in results] == ["training", "training", "cache", "training"]
    assert len(EvaluationCache(cache)) == 3
    assert all(r["worker"] and r["run_seconds"] > 0 for r in results)
    again = evaluator.evaluate_batch(CELLS)
    assert [r["source"] for r in again] == ["cache"] * 3
    evaluator.close()
    assert local_ray.is_initialized()  # a Ray the backend did not start stays up


def test_a_ray_batch_stops_on_request_before_and_during_its_tasks(local_ray, synthetic_data_root,
                                                                   tmp_path):
    """Ray tasks cannot be told to save: a stop request ends the batch with RunStopped at once,
    before its tasks start or by cancelling them, and nothing half-trained is cached."""
    import threading

    from nas_env.parallel import RayBackend
    from nas_env.run_checkpoint import RunStopped, clear_stop_request, request_stop

    slow = Protocol.from_dict({**TINY.as_dict(), "epochs": 10})
    checkpoints, cache = tmp_path / "checkpoints", tmp_path / "c.sqlite"
    evaluator = LiveEvaluator("large", protocol=slow, data_root=synthetic_data_root, cache=cache,
                              threads=1, backend=RayBackend(), checkpoint_dir=checkpoints)

    def stop_once_a_run_trains() -> None:  # a run holds its lock file while it trains
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not list(checkpoints.glob("*.lock")):
            time.sleep(0.05)
        request_stop()

    try:
        request_stop()
        with pytest.raises(RunStopped, match="before the batch's Ray tasks started"):
            evaluator.evaluate_batch(CELLS)
        clear_stop_request()
        threading.Thread(target=stop_once_a_run_trains, daemon=True).start()
        with pytest.raises(RunStopped, match="Ray tasks in training were cancelled"):
            evaluator.evaluate_batch(CELLS)
    finally:
        clear_stop_request()
        evaluator.close()
    assert len(EvaluationCache(cache)) == 0


def test_a_killed_ray_worker_is_retried(local_ray, synthetic_data_root, tmp_path, reference):
    from nas_env.parallel import RayBackend

    marker = tmp_path / "killed"
    backend = RayBackend(max_retries=2, runtime_env={"env_vars": {KILL_VARIABLE: str(marker),
                                                                  "PYTHONPATH": FAULTS}})
    results = live(synthetic_data_root, False, backend=backend).evaluate_batch(CELLS)
    assert marker.exists()
    assert [measured(r) for r in results] == reference


class RecordSamples(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.samples: list[tuple[str, float]] = []

    def _on_step(self) -> bool:
        self.samples += [(i["arch"], float(r)) for r, i in zip(self.locals["rewards"],
                                                                 self.locals["infos"])]
        return True


def test_a_ppo_search_through_ray_equals_the_inline_one(local_ray, synthetic_data_root):
    from nas_env.parallel import RayBackend

    def search(backend) -> list:
        venv = NASBatchVecEnv("NASCell-large-v0", n_envs=4, backend=backend, blocks=2,
                              protocol=TINY, data_root=synthetic_data_root, cache_path=":memory:",
                              threads=1)
        record = RecordSamples()
        make_ppo(venv, seed=3, n_steps=1, batch_size=4).learn(total_timesteps=8, callback=record)
        venv.close()
        return record.samples

    inline = search("inline")
    assert len(inline) == 8
    assert search(RayBackend()) == inline


class _FakeRay:
    """Just enough of Ray's API for RayBackend.run, with a stop request that arrives while the
    driver waits and the first task finishes in the same moment."""

    class exceptions:
        WorkerCrashedError = NodeDiedError = ObjectLostError = TaskCancelledError = RuntimeError

    def __init__(self) -> None:
        self.cancelled = []

    def is_initialized(self) -> bool:
        return True

    def put(self, value):
        return value

    def remote(self, function):
        fake = self

        class Remote:
            def options(self, **options):
                return self

            def remote(self, spec, data_ref, job, queued_at, threads):
                return ("ref", job.seed)

        fake.function = function
        return Remote()

    def wait(self, refs, num_returns, timeout):
        from nas_env.run_checkpoint import request_stop

        request_stop()
        return refs[:1], refs[1:]

    def get(self, ref):
        return {"seed": ref[1], "validation_accuracy": 90.0}

    def cancel(self, ref, force):
        self.cancelled.append(ref)


def test_a_ray_task_that_finished_as_a_stop_came_is_handed_back_before_stopping(monkeypatch):
    import nas_env.backends.ray_tasks as ray_tasks
    from nas_env.parallel import Job, RayBackend, TrainingSpec
    from nas_env.run_checkpoint import RunStopped, clear_stop_request

    fake = _FakeRay()
    monkeypatch.setattr(ray_tasks, "import_ray", lambda: fake)  # where RayBackend looks it up
    backend = RayBackend(workers=1)
    backend.bind(TrainingSpec("mnist", None, {}, checkpoint_dir="/tmp/unused"), lambda: None)
    cells = [LargeCell([(0, 0, "conv3x3", "identity")])] * 2
    handed_back = []
    try:
        with pytest.raises(RunStopped):
            for i, outcome in backend.run([Job(cells[0], 0), Job(cells[1], 1)]):
                handed_back.append((i, outcome["seed"]))
    finally:
        clear_stop_request()
    assert handed_back == [(0, 0)]  # finished, so cached by the evaluator, not dropped
    assert fake.cancelled == [("ref", 1)]


TERMINATED_SEARCH = """
import sys
sys.path.insert(0, {tests!r})
from test_parallel import CELLS, TINY
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


def pool_batch(root, cache, max_retries: int) -> list[dict]:
    """CELLS evaluated in one batch by a pool of two workers."""
    evaluator = LiveEvaluator("large", protocol=TINY, data_root=root, cache=cache,
                              backend=ProcessBackend(workers=2, threads=1, max_retries=max_retries))
    try:
        return evaluator.evaluate_batch(CELLS)
    finally:
        evaluator.close()


def test_a_healthy_job_sharing_the_pool_with_a_crashing_one_is_not_charged(
        synthetic_data_root, tmp_path, monkeypatch, reference):
    """Jobs lost together with a broken pool are retried one at a time, so only the job whose
    worker dies while it runs alone is charged and fails."""
    inject_faults(monkeypatch, "cell:" + CELLS[0].canonical().to_string())
    results = pool_batch(synthetic_data_root, tmp_path / "c.sqlite", max_retries=1)
    assert results[0]["failure"].startswith("worker_lost") and "alone" in results[0]["failure"]
    assert [r["failure"] for r in results[1:]] == [None, None]
    assert [measured(r) for r in results[1:]] == reference[1:]
    assert len(EvaluationCache(tmp_path / "c.sqlite")) == 2


def test_a_pool_that_breaks_between_waits_takes_its_next_job_later(synthetic_data_root, tmp_path,
                                                                  monkeypatch, reference):
    """A worker can die after one wait returns and before the next job is submitted: the submit
    itself raises BrokenProcessPool. The job goes back in line and the batch still completes."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    original, refusals = ProcessPoolExecutor.submit, []

    def submit(self, fn, /, *args, **kwargs):
        if len(refusals) < 2:  # the first submit (nothing running) and the second (one running)
            refusals.append(args[1])
            raise BrokenProcessPool("a child process terminated abruptly")
        return original(self, fn, *args, **kwargs)
    monkeypatch.setattr(ProcessPoolExecutor, "submit", submit)
    results = pool_batch(synthetic_data_root, tmp_path / "c.sqlite", max_retries=0)
    assert len(refusals) == 2
    assert [r["failure"] for r in results] == [None, None, None]
    assert [measured(r) for r in results] == reference
