"""Batch evaluation on the Ray backend: the inline numbers, in order, once per cell; a stop request
before and during its tasks; a killed Ray worker retried; a PPO search through Ray equal to the
inline one; and the message that says how to install Ray where it is missing. A local Ray with 2
CPUs starts once for the module; its tests are skipped only when Ray is not installed
(``pip install -e '.[ray]'``)."""

from __future__ import annotations

import time

import pytest
from stable_baselines3.common.callbacks import BaseCallback

import nas_env  # noqa: F401  (registers the ids)
from agents.ppo_search import make_ppo
from nas_env.cache import EvaluationCache
from nas_env.evaluators import LiveEvaluator
from nas_env.parallel import make_backend
from nas_env.spaces import LargeCell
from nas_env.training import Protocol
from nas_env.vec_env import NASBatchVecEnv

from parallel_support import CELLS, FAULTS, KILL_VARIABLE, TINY, live, measured


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


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _system_config={"worker_niceness": 0})
    yield ray
    ray.shutdown()


def test_the_ray_backend_gives_the_inline_numbers_in_order_once_per_cell(local_ray,
                                                                        synthetic_data_root,
                                                                        tmp_path, inline_results):
    from nas_env.parallel import RayBackend

    cache = tmp_path / "c.sqlite"
    evaluator = live(synthetic_data_root, cache, backend=RayBackend())
    results = evaluator.evaluate_batch([CELLS[1], CELLS[0], CELLS[1], CELLS[2]])
    assert [measured(r) for r in results] == [inline_results[1], inline_results[0], inline_results[1], inline_results[2]]
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


def test_a_killed_ray_worker_is_retried(local_ray, synthetic_data_root, tmp_path, inline_results):
    from nas_env.parallel import RayBackend

    marker = tmp_path / "killed"
    backend = RayBackend(max_retries=2, runtime_env={"env_vars": {KILL_VARIABLE: str(marker),
                                                                  "PYTHONPATH": FAULTS}})
    results = live(synthetic_data_root, False, backend=backend).evaluate_batch(CELLS)
    assert marker.exists()
    assert [measured(r) for r in results] == inline_results


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
