"""The registered envs, on the checked-in fixture table."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nas_env  # noqa: F401  (registers the ids)
from nas_env.benchmark import RewardTable, RewardTableError
from nas_env.envs import NASCellEnv, NASCellSeqEnv
from nas_env.results import PROVENANCE_KEYS, RESULT_KEYS
from nas_env.spaces import InvalidArchitectureError, SmallCell

FIXTURE = Path(__file__).parent / "fixtures" / "small_fixture.csv"
ALL_IDS = sorted(env_id for env_id, spec in gym.registry.items()
                 if str(spec.entry_point).startswith("nas_env."))
ENV_IDS = [env_id for env_id in ALL_IDS if "small" in env_id]
"""The A_small ids, which these tests run on the fixture table (A_large: test_large_env.py)."""
INFO_KEYS = {*RESULT_KEYS, "budget_met", "total_training_time"} - set(PROVENANCE_KEYS)
BUDGET = 150_000


def make(env_id: str = "NASCell-small-v0", **kwargs) -> gym.Env:
    return gym.make(env_id, table_path=FIXTURE, **kwargs)


def evaluate_cell(env: gym.Env, cell: SmallCell):
    """Search ``cell`` in either env: one action or one token per op."""
    if isinstance(env.unwrapped, NASCellSeqEnv):
        env.step(cell.to_action()[0])
        return env.step(cell.to_action()[1])
    return env.step(cell.to_action())


@pytest.fixture(scope="module")
def table() -> RewardTable:
    return RewardTable(FIXTURE)


def test_every_id_is_registered():
    assert ALL_IDS == ["NASCell-large-v0", "NASCell-small-v0", "NASCellSeq-small-v0"]
    assert isinstance(gym.make("nas_env:NASCell-small-v0", table_path=FIXTURE).unwrapped, NASCellEnv)


def test_reimporting_does_not_register_twice():
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(nas_env)


@pytest.mark.parametrize("seed_mode", ["mean", "sample"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_env_checker_passes(env_id, seed_mode):
    env = make(env_id, reward="param", seed_mode=seed_mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env.unwrapped)


@pytest.mark.parametrize("seed_mode", ["mean", "sample"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_env_checker_passes(env_id, seed_mode):
    env = make(env_id, reward="param", seed_mode=seed_mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec(env_id):
    envs = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync", table_path=FIXTURE)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3,) + envs.single_observation_space.shape
    for _ in range(4):
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    assert reward.shape == (3,) and not truncated.any()
    envs.close()


def rollout(env_id: str, seed: int, steps: int = 40, **kwargs) -> list:
    env = make(env_id, **kwargs)
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    trace = [(obs.tolist(), info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append((obs.tolist(), reward, terminated, truncated, info))
        if terminated or truncated:
            trace.append(env.reset())
    return trace


@pytest.mark.parametrize("seed_mode", ["mean", "sample"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_rollout(env_id, seed_mode):
    first = rollout(env_id, 3, seed_mode=seed_mode)
    assert repr(first) == repr(rollout(env_id, 3, seed_mode=seed_mode))
    if seed_mode == "sample":
        assert repr(first) != repr(rollout(env_id, 4, seed_mode=seed_mode))


def test_sample_mode_draws_seeds_from_np_random():
    env = make(seed_mode="sample")
    env.reset(seed=0)
    seeds = {env.step([3, 3])[4]["seed"] for _ in range(30)}
    assert seeds == {0, 1}
    env = make()
    env.reset(seed=0)
    mean_info = env.step([3, 3])[4]
    assert mean_info["seed"] is None and mean_info["num_seeds"] == 2


@pytest.mark.parametrize("kwargs", [{}, {"reward": "param"}, {"reward": "param", "budget_scope": "network",
                                                                  "budget": 25.9e6},
                                    {"seed_mode": "sample"}])
def test_seq_env_rewards_equal_the_one_step_envs(kwargs):
    one_step, seq = make(**kwargs), make("NASCellSeq-small-v0", **kwargs)
    one_step.reset(seed=11)
    seq.reset(seed=11)
    for cell in SmallCell.all():
        expected = one_step.step(cell.to_action())
        obs, reward, terminated, truncated, info = evaluate_cell(seq, cell)
        assert (reward, terminated, truncated, info) == expected[1:]
        assert obs.tolist() == [i + 1 for i in cell.to_action()]
        seq.reset()


def test_seq_env_observes_the_tokens_so_far():
    env = make("NASCellSeq-small-v0")
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [0, 0] and info == {}
    obs, reward, terminated, truncated, info = env.step(4)
    assert (obs.tolist(), reward, terminated, truncated, info) == ([5, 0], 0.0, False, False, {})
    obs, reward, terminated, truncated, info = env.step(0)
    assert obs.tolist() == [5, 1] and terminated and info["arch"] == SmallCell(4, 0).to_string()
    with pytest.raises(ResetNeeded):
        env.unwrapped.step(1)


def test_info_reports_the_table_and_the_reward_never_uses_test_accuracy(table):
    env = make()
    env.reset(seed=0)
    for cell in SmallCell.all():
        obs, reward, terminated, truncated, info = env.step(cell.to_action())
        assert set(info) == INFO_KEYS and terminated and not truncated
        assert obs.tolist() == [0.0] and obs in env.observation_space
        expected = table.query(cell)
        assert {k: info[k] for k in INFO_KEYS & set(expected)} == \
            {k: v for k, v in expected.items() if k not in PROVENANCE_KEYS}
        assert env.unwrapped.last_provenance["source"] == "table"
        assert reward == info["validation_accuracy"] != info["test_accuracy"]


def test_r_param_penalises_cells_over_the_cell_budget(table):
    env = make(reward="param")
    env.reset(seed=0)
    penalised = 0
    for cell in SmallCell.all():
        _, reward, _, _, info = env.step(cell.to_action())
        met = table.query(cell)["cell_parameters"] < BUDGET
        assert info["budget_met"] is met
        assert reward == (info["validation_accuracy"] if met else -100.0)
        penalised += not met
    assert 0 < penalised < 64


@pytest.mark.parametrize("kwargs, metric, budget", [
    ({"budget_scope": "cells"}, "cell_parameters", BUDGET),
    ({"budget_scope": "network", "budget": 25.9e6}, "trainable_parameters", 25.9e6),
    ({"budget_metric": "flops", "budget": 50e6}, "flops", 50e6),
    ({"budget_metric": "latency_ms", "budget": 8.0}, "latency_ms", 8.0),
    ({"budget_metric": "training_time", "budget": 120.0}, "training_time", 120.0),
])
def test_budget_scopes_and_metrics(table, kwargs, metric, budget):
    env = make(reward="param", **kwargs)
    env.reset(seed=0)
    rewards = np.array([evaluate_cell(env, cell)[1] for cell in SmallCell.all()])
    values = table.mean[metric]
    np.testing.assert_array_equal(rewards == -100.0, values >= budget)
    assert 0 < (values < budget).sum() < 64, "the budget should split the space"
    assert env.unwrapped.reward_fn.budget_metric == metric


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_simulated_cost_accumulates_across_episodes(table, env_id):
    env = make(env_id)
    env.reset(seed=0)
    cells = [SmallCell(1, 5), SmallCell(3, 3), SmallCell(7, 7)]
    for cell in cells:
        info = evaluate_cell(env, cell)[4]
        env.reset()
    total = sum(table.query(c)["training_time"] for c in cells)
    assert info["total_training_time"] == pytest.approx(total)
    assert env.unwrapped.total_training_time == pytest.approx(total)
    env.unwrapped.reset_cost()
    assert evaluate_cell(env, cells[0])[4]["total_training_time"] == table.query(cells[0])["training_time"]
    env.reset(seed=1)
    assert env.unwrapped.total_training_time == 0.0


@pytest.mark.parametrize("action", [[8, 0], [0, -1], [1], [1, 2, 3], [1.5, 0], "ab", np.array([0, 8]), None])
def test_actions_outside_the_space_are_refused(action):
    env = make()
    env.reset(seed=0)
    with pytest.raises(InvalidArchitectureError, match="0 to 7"):
        env.unwrapped.step(action)


@pytest.mark.parametrize("action", [8, -1, 2.5])
def test_seq_actions_outside_the_space_are_refused(action):
    env = make("NASCellSeq-small-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidArchitectureError, match="0 to 7"):
        env.unwrapped.step(action)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_missing_and_malformed_tables_name_the_file(tmp_path, env_id):
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        gym.make(env_id, table_path=tmp_path / "absent.csv")
    partial = tmp_path / "partial.csv"
    pd.read_csv(FIXTURE).iloc[:10].to_csv(partial, index=False)
    with pytest.raises(RewardTableError, match="partial.csv is incomplete: it covers 10 of the 64"):
        gym.make(env_id, table_path=partial)
    # No paper-protocol table is shipped (the Fashion-MNIST one may be, part-built).
    with pytest.raises(FileNotFoundError, match="protocol='paper'.*shipped tables"):
        gym.make(env_id, protocol="paper")


@pytest.mark.parametrize("kwargs, message", [
    ({"reward": "accuracy"}, "reward='accuracy'.*'val', 'param'"),
    ({"budget_scope": "layers"}, "budget_scope='layers'.*'cells', 'network'"),
    ({"seed_mode": "median"}, "seed_mode='median'.*'mean', 'sample'"),
    ({"budget_metric": "flops"}, "'flops' has no default budget"),
    ({"dataset": "fashion_mnist"}, "records dataset='mnist'.*pass dataset='mnist'"),
    ({"protocol": "paper"}, "records protocol='fast'"),
])
def test_bad_keywords_fail_naming_the_allowed_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


@pytest.mark.parametrize("algo", ["PPO", "A2C", "DQN"])
def test_stock_sb3_agents_search_the_seq_env(algo):
    import stable_baselines3

    kwargs = {"PPO": {"n_steps": 32, "batch_size": 32, "n_epochs": 1}, "A2C": {"n_steps": 4},
              "DQN": {"learning_starts": 8, "buffer_size": 64, "train_freq": 4}}[algo]
    model = getattr(stable_baselines3, algo)("MlpPolicy", make("NASCellSeq-small-v0", reward="param"),
                                             seed=0, device="cpu", **kwargs)
    model.learn(total_timesteps=64)
    action, _ = model.predict(np.array([0, 0]), deterministic=True)
    assert 0 <= int(action) < 8


def test_ppo_searches_the_one_step_env():
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", make(), n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)


def test_import_and_make_stay_light():
    code = (
        "import sys, gymnasium as gym, nas_env\n"
        "assert 'pandas' not in sys.modules and 'torch' not in sys.modules\n"
        f"env = gym.make('NASCell-small-v0', table_path={str(FIXTURE)!r})\n"
        "env.reset(seed=0); env.step(env.action_space.sample())\n"
        "assert 'torch' not in sys.modules, 'the env imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_lower_fidelity_reads_the_curve_and_charges_its_share(env_id, table):
    cell = SmallCell("conv3x3", "max_pool2x2")
    full, half = make(env_id), make(env_id, fidelity=0.5)
    for env in (full, half):
        env.reset(seed=0)
    _, r_full, _, _, info_full = evaluate_cell(full, cell)
    _, r_half, _, _, info_half = evaluate_cell(half, cell)
    curve = dict(table.query(cell)["val_curve"])
    assert r_half == curve[0.5] == info_half["validation_accuracy"] and info_half["fidelity"] == 0.5
    assert r_full == curve[1.0] and info_full["fidelity"] == 1.0
    assert info_half["training_time"] == pytest.approx(0.5 * info_full["training_time"])
    assert info_half["test_accuracy"] == info_full["test_accuracy"]
    with pytest.raises(ValueError, match="allowed: 0.25, 0.5, 0.75, 1"):
        make(env_id, fidelity=0.3)
