"""Batch evaluation: NASBatchVecEnv, the inline and process backends, dedup, cache, workers that
die (stopping a batch: ``test_parallel_stops.py``; the Ray backend: ``test_ray_backend.py``).

Synthetic IDX data and a tiny deterministic protocol, one torch thread everywhere, so every
backend must give the same numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nas_env  # noqa: F401  (registers the ids)
from nas_env.cache import EvaluationCache
from nas_env.evaluators import LiveEvaluator
from nas_env.hardware import cpu_name
from nas_env.parallel import InlineBackend, ProcessBackend, make_backend
from nas_env.spaces import LargeCell
from nas_env.vec_env import NASBatchVecEnv

from parallel_support import (CELLS, SWAPPED, TINY, count_trainings, inject_faults, live,
                              measured)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "small_fixture.csv"


def test_a_batch_trains_each_distinct_cell_once_in_the_batch_order(synthetic_data_root, tmp_path,
                                                                   monkeypatch, inline_results):
    calls = count_trainings(monkeypatch)
    evaluator = live(synthetic_data_root, tmp_path / "c.sqlite")
    batch = [CELLS[0], CELLS[1], CELLS[0], CELLS[2], SWAPPED]
    results = evaluator.evaluate_batch(batch)
    assert sorted(calls) == sorted(c.key for c in CELLS)  # five samples, three trainings
    assert [r["arch"] for r in results] == [c.to_string() for c in batch]
    assert [r["source"] for r in results] == ["training", "training", "cache", "training", "cache"]
    assert [measured(r) for r in results] == [inline_results[0], inline_results[1], inline_results[0],
                                              inline_results[2], inline_results[0]]
    assert len(evaluator.cache) == 3


def test_a_batch_answers_cached_cells_without_training(synthetic_data_root, tmp_path, monkeypatch):
    cache = tmp_path / "c.sqlite"
    live(synthetic_data_root, cache).evaluate_batch(CELLS[:2])
    calls = count_trainings(monkeypatch)
    results = live(synthetic_data_root, cache).evaluate_batch([CELLS[1], CELLS[2], CELLS[0]])
    assert calls == [CELLS[2].key]
    assert [r["source"] for r in results] == ["cache", "training", "cache"]


def test_the_process_backend_gives_the_inline_numbers_from_its_workers(synthetic_data_root,
                                                                       tmp_path, inline_results):
    evaluator = live(synthetic_data_root, tmp_path / "c.sqlite", backend="process", workers=2)
    try:
        results = evaluator.evaluate_batch([CELLS[2], CELLS[0], CELLS[1], CELLS[2]])
        pids = evaluator.backend.worker_pids()
    finally:
        evaluator.close()
    assert [measured(r) for r in results] == [inline_results[2], inline_results[0], inline_results[1], inline_results[2]]
    workers = {r["worker"] for r in results}
    assert len(workers) <= 2
    assert str(os.getpid()) not in {w.split(":")[-1] for w in workers}
    assert {int(w.split(":")[-1]) for w in workers} <= set(pids)
    assert all(r["run_seconds"] > 0 and r["wait_seconds"] >= 0 for r in results[:3])
    # Each record names what trained it, with the worker's threads, whichever process it was.
    assert {(r["hardware"], r["threads"]) for r in results} == {(cpu_name(), 1)}
    assert len(EvaluationCache(tmp_path / "c.sqlite")) == 3  # the driver wrote each once


def test_a_killed_process_worker_is_retried(synthetic_data_root, tmp_path, monkeypatch, inline_results):
    marker = tmp_path / "killed"
    inject_faults(monkeypatch, str(marker))  # the first job's worker dies (SIGKILL)
    evaluator = live(synthetic_data_root, tmp_path / "c.sqlite", backend="process", workers=2)
    try:
        results = evaluator.evaluate_batch(CELLS)
    finally:
        evaluator.close()
    assert marker.exists()
    assert [r["failure"] for r in results] == [None, None, None]
    assert [measured(r) for r in results] == inline_results


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


def pool_batch(root, cache, max_retries: int) -> list[dict]:
    """CELLS evaluated in one batch by a pool of two workers."""
    evaluator = LiveEvaluator("large", protocol=TINY, data_root=root, cache=cache,
                              backend=ProcessBackend(workers=2, threads=1, max_retries=max_retries))
    try:
        return evaluator.evaluate_batch(CELLS)
    finally:
        evaluator.close()


def test_a_healthy_job_sharing_the_pool_with_a_crashing_one_is_not_charged(
        synthetic_data_root, tmp_path, monkeypatch, inline_results):
    """Jobs lost together with a broken pool are retried one at a time, so only the job whose
    worker dies while it runs alone is charged and fails."""
    inject_faults(monkeypatch, "cell:" + CELLS[0].canonical().to_string())
    results = pool_batch(synthetic_data_root, tmp_path / "c.sqlite", max_retries=1)
    assert results[0]["failure"].startswith("worker_lost") and "alone" in results[0]["failure"]
    assert [r["failure"] for r in results[1:]] == [None, None]
    assert [measured(r) for r in results[1:]] == inline_results[1:]
    assert len(EvaluationCache(tmp_path / "c.sqlite")) == 2


def test_a_pool_that_breaks_between_waits_takes_its_next_job_later(synthetic_data_root, tmp_path,
                                                                  monkeypatch, inline_results):
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
    assert [measured(r) for r in results] == inline_results
