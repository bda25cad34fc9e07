"""The baseline searchers and their common counting, on the fixture table (no training, no GPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import nas_env  # noqa: F401  (registers the env ids)
from agents.baselines import SEARCHERS
from agents.evolution import mutate
from agents.search_stats import censored_percentile, random_search_theory
from agents.search_trace import EvaluationRecorder
from agents.toy_bandit import MultiDiscreteBandit
from nas_env.spaces import SmallCell

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "small_fixture.csv"

BASELINES = ["random", "random_norepeat", "evolution", "reinforce"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """REINFORCE's controller is tiny; a thread pool only slows it down on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_env(reward: str = "val") -> gym.Env:
    return gym.make("NASCell-small-v0", table_path=FIXTURE, reward=reward)


def optimum(env: gym.Env):
    """The table's Optimum under the env's reward: the one helper the tests use."""
    return env.unwrapped.table.optimum(env.unwrapped.reward_fn)


@pytest.mark.parametrize("reward", ["val", "param"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_without_replacement_covers_the_space(reward, seed):
    env = make_env(reward)
    trace = SEARCHERS["random_norepeat"](env, 64, seed)
    assert len(set(trace.archs)) == 64 == len(trace)
    assert trace.first_hit([optimum(env).arch]) is not None


@pytest.mark.parametrize("method, budget", [("random", 1000), ("evolution", 300), ("reinforce", 300)])
@pytest.mark.parametrize("reward", ["val", "param"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_searcher_finds_the_optimum(method, budget, reward, seed):
    # Random search with replacement misses one optimum of 64 in 300 draws with probability
    # (63/64)^300 ~ 0.9% (seed 0 under r_param does); in 1000 draws, 1.5e-7.
    env = make_env(reward)
    assert SEARCHERS[method](env, budget, seed).first_hit([optimum(env).arch]) is not None


@pytest.mark.parametrize("method", BASELINES)
def test_same_seed_same_trace(method):
    env = make_env("param")
    first, again, other = (SEARCHERS[method](env, 40, seed) for seed in (3, 3, 4))
    assert first.archs == again.archs
    np.testing.assert_array_equal(first.rewards, again.rewards)
    np.testing.assert_array_equal(first.actions, again.actions)
    assert first.archs != other.archs


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("budget", [1, 7, 23])
def test_budget_is_spent_exactly(method, budget):
    # 7 and 23 are neither multiples of REINFORCE's batch nor above evolution's population.
    recorder = EvaluationRecorder(make_env())
    trace = SEARCHERS[method](recorder, budget, 0)
    assert recorder.num_evaluations == len(trace) == budget


def test_random_without_replacement_stops_when_the_space_is_exhausted():
    recorder = EvaluationRecorder(make_env())
    trace = SEARCHERS["random_norepeat"](recorder, 100, 0)
    assert recorder.num_evaluations == len(trace) == 64


@pytest.mark.parametrize("method", ["random", "random_norepeat", "evolution", "reinforce"])
def test_any_multidiscrete_space(method):
    rewards = np.random.default_rng(0).random((3, 1, 5))
    trace = SEARCHERS[method](MultiDiscreteBandit(rewards), 30, 0)
    assert trace.actions.shape == (30 if method != "random_norepeat" else 15, 3)
    assert (trace.actions >= 0).all() and (trace.actions < [3, 1, 5]).all()
    np.testing.assert_array_equal(trace.rewards, rewards[tuple(trace.actions.T)])


def test_recorder_logs_every_evaluation():
    env = make_env("param")
    table, reward_fn = env.unwrapped.table, env.unwrapped.reward_fn
    recorder = EvaluationRecorder(env)
    recorder.reset(seed=0)
    actions = [[1, 5], [0, 0], [1, 5], [7, 7]]
    for action in actions:
        recorder.evaluate(action)
    trace = recorder.trace("manual", seed=0)
    assert recorder.num_evaluations == len(trace) == 4
    assert trace.archs == tuple(SmallCell.from_action(a).to_string() for a in actions)
    expected = table.rewards(reward_fn)[[SmallCell.from_action(a).index for a in actions]]
    np.testing.assert_array_equal(trace.rewards, expected)
    np.testing.assert_array_equal(trace.best_so_far(), np.maximum.accumulate(expected))
    assert recorder.trace("manual", 0, since=2).archs == trace.archs[2:]
    assert len(trace.truncated(3)) == 3


def test_first_hit_and_regret():
    env = make_env()
    best = SmallCell.from_string(env.unwrapped.table.best("val")["arch"]).to_action()
    recorder = EvaluationRecorder(env)
    recorder.reset(seed=0)
    for action in ([0, 0], best, [0, 1]):
        recorder.evaluate(action)
    trace = recorder.trace("manual", 0)
    best_cell = [optimum(env).arch]
    assert trace.first_hit(best_cell) == 2
    reward = optimum(env).reward
    assert trace.regret(reward)[0] > 0 and (trace.regret(reward)[1:] == 0).all()
    assert trace.truncated(1).first_hit(best_cell) is None


def test_recorder_refuses_a_non_architecture_action_space():
    with pytest.raises(ValueError, match="MultiDiscrete"):
        EvaluationRecorder(gym.make("NASCellSeq-small-v0", table_path=FIXTURE))


def test_mutate_changes_exactly_one_token():
    rng = np.random.default_rng(0)
    nvec = np.array([1, 3, 8])
    for _ in range(200):
        parent = rng.integers(nvec)
        child = mutate(parent, nvec, rng)
        assert (child != parent).sum() == 1 and child[0] == 0 and (child < nvec).all()


def test_ppo_counts_like_the_others():
    # learn() runs whole rollouts of 20: 25 evaluations asked, 40 made, 25 kept.
    recorder = EvaluationRecorder(make_env())
    trace = SEARCHERS["ppo"](recorder, 25, 0)
    assert recorder.num_evaluations == 40 and len(trace) == 25


def test_random_search_theory():
    no_repeat = random_search_theory(64, 1, budget=200, replace=False)
    assert no_repeat["mean"] == 32.5 and no_repeat["q50"] == 32 and no_repeat["p_never"] == 0
    assert random_search_theory(64, 1, budget=63, replace=False)["p_never"] == pytest.approx(1 / 64)
    repeat = random_search_theory(64, 1, budget=200, replace=True)
    assert repeat["mean"] == 64 and repeat["p_never"] == pytest.approx((63 / 64) ** 200)
    assert repeat["q50"] == 45  # the smallest t with 1 - (63/64)^t >= 1/2
    assert random_search_theory(64, 2, budget=200, replace=False)["mean"] == pytest.approx(65 / 3)


def test_censored_percentile_reads_never_found_as_beyond_budget():
    values = np.array([35.0, 37.0, np.inf])
    assert [censored_percentile(values, p) for p in (25, 50, 75)] == [36.0, 37.0, np.inf]
    assert censored_percentile(np.array([1.0, 2.0, 3.0, 4.0]), 25) == np.percentile([1, 2, 3, 4], 25)


def test_compare_search_writes_its_outputs(tmp_path):
    done = subprocess.run(
        [sys.executable, "experiments/compare_search.py", "--table-path", str(FIXTURE),
         "--methods", "random_norepeat", "evolution", "--seeds", "2", "--cells", "20",
         "--workers", "1", "--out-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    (out,) = tmp_path.iterdir()
    assert {p.name for p in out.iterdir()} == {
        "curves.csv", "first_hits.csv", "summary.csv", "summary.md", "regret.png"}
    import pandas as pd

    curves = pd.read_csv(out / "curves.csv")
    assert len(curves) == 2 * 2 * 2 * 20  # methods x rewards x seeds x evaluations
    assert list(curves.columns[:4]) == ["method", "reward_kind", "seed", "evaluation"]
    assert (curves.groupby(["method", "reward_kind", "seed"])["regret"].apply(
        lambda r: r.is_monotonic_decreasing)).all()
    assert "| random_norepeat | val" in done.stdout
