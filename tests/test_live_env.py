"""Live evaluation: NASCell-large-v0 and NASCell-small-v0 with evaluator="live", on synthetic IDX
data with a tiny protocol (a few seconds of CPU per test)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nas_env  # noqa: F401  (registers the ids)
import nas_env.training
from nas_env.cache import EvaluationCache
from nas_env.child_net import network_size
from nas_env.data import DatasetNotFoundError
from nas_env.evaluators import LiveEvaluator
from nas_env.results import PROVENANCE_KEYS, RESULT_KEYS
from nas_env.spaces import InvalidArchitectureError, LargeCell, SmallCell
from nas_env.training import Protocol, train_child

TINY = Protocol("tiny", epochs=2, lr=1e-2, schedule="onecycle", batch_size=32,
                checkpoints_per_epoch=1, filters=(4, 8), fc_units=32, precision="fp32")
EXPLODING = Protocol("exploding", epochs=1, lr=1e30, schedule="constant", batch_size=64,
                     checkpoints_per_epoch=1, filters=(4, 8), fc_units=32, precision="fp32")
INFO_KEYS = {*RESULT_KEYS, "budget_met", "total_training_time"} - set(PROVENANCE_KEYS)
CELL = LargeCell([(0, 0, "conv3x3", "max_pool2x2"), (1, 0, "identity", "sep_conv3x3")])


@pytest.fixture
def make_large(synthetic_data_root, tmp_path):
    def make(**kwargs) -> gym.Env:
        # One thread: tiny nets gain nothing from more, and lose much when the cores are shared.
        kwargs = {"blocks": 2, "protocol": TINY, "data_root": synthetic_data_root,
                  "cache_path": tmp_path / "cache.sqlite", "threads": 1, **kwargs}
        return gym.make("NASCell-large-v0", **kwargs)
    return make


def forbid_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("trained a child network where none should be trained")
    monkeypatch.setattr(nas_env.training, "train_child", fail)


def test_the_action_space_is_the_paper_a_large(make_large):
    env = make_large(blocks=5)
    assert env.action_space == gym.spaces.MultiDiscrete(LargeCell.action_nvec(5))
    assert env.action_space.nvec.tolist()[:8] == [1, 1, 8, 8, 2, 2, 8, 8]
    assert gym.make("NASCell-large-v0", cache_path=":memory:").unwrapped.blocks == 5


def test_a_step_trains_a_child_on_synthetic_data(make_large):
    env = make_large()
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(np.array(CELL.to_action()))
    assert terminated and not truncated
    assert set(info) == INFO_KEYS
    assert env.unwrapped.last_provenance["source"] == "training"
    assert env.unwrapped.source_counts == {"training": 1}
    assert info["arch"] == CELL.to_string() and info["arch_key"] == CELL.key
    assert info["protocol"] == "tiny" and info["dataset"] == "mnist" and info["failure"] is None
    assert reward == info["validation_accuracy"] and 0 <= reward <= 100
    assert info["training_time"] > 0 and info["total_training_time"] == info["training_time"]
    # Sizes are the paper-size network's, not the tiny proxy's.
    assert {k: info[k] for k in ("trainable_parameters", "cell_parameters", "flops")} == network_size(CELL)


def test_a_known_cell_costs_a_lookup(make_large, monkeypatch):
    env = make_large()
    env.reset(seed=0)
    _, first_reward, _, _, first = env.step(CELL.to_action())
    forbid_training(monkeypatch)
    _, reward, _, _, info = env.step(CELL.to_action())
    assert env.unwrapped.last_provenance["source"] == "cache" and reward == first_reward
    # The info is the first one's: only the simulated cost has grown.
    assert info == {**first, "total_training_time": info["total_training_time"]}
    # The two halves of a block commute: the swapped cell is the same cell.
    swapped = LargeCell([(b.h_b, b.h_a, b.op2, b.op1) for b in CELL.blocks])
    env.step(swapped.to_action())
    assert env.unwrapped.last_provenance["source"] == "cache"
    assert env.unwrapped.source_counts == {"training": 1, "cache": 2}
    # The simulated cost still charges every evaluation, as a search without a cache would pay.
    assert info["total_training_time"] == pytest.approx(2 * first["training_time"])


@pytest.mark.parametrize("seed_mode", ["mean", "sample"])
def test_both_env_checkers_pass_on_a_fresh_env(make_large, seed_mode):
    """The checkers step the same seeded action twice and want equal infos: the first step
    trains, the second is a cache hit, and the info must not tell them apart."""
    env = make_large(blocks=1, seed_mode=seed_mode, train_seeds=[0, 1]).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env)
        sb3_check_env(env, warn=True)


def test_a_diverged_run_is_a_failure_and_the_search_goes_on(make_large, tmp_path):
    for reward, expected in (("val", 0.0), ("param", -100.0)):
        env = make_large(protocol=EXPLODING, reward=reward, budget=1e12)
        env.reset(seed=0)
        _, r, _, _, info = env.step(CELL.to_action())
        assert r == expected
        assert info["diverged"] is True and info["failure"] == "diverged"
        _, _, terminated, _, info = env.step(env.action_space.sample())  # the search goes on
        assert terminated and info["failure"] == "diverged"
    # Recorded as a finished (failed) evaluation: the cache holds it.
    cache = EvaluationCache(tmp_path / "cache.sqlite")
    stored = [row["result"] for row in cache.rows(protocol="exploding")]
    assert stored and all(r["failure"] == "diverged" for r in stored)


def test_an_over_budget_cell_costs_nothing(make_large, monkeypatch):
    env = make_large(reward="param")  # 150,000 cell parameters; CELL has far more
    env.reset(seed=0)
    forbid_training(monkeypatch)
    _, reward, _, _, info = env.step(CELL.to_action())
    assert reward == -100.0 and info["budget_met"] is False
    assert env.unwrapped.last_provenance["source"] == "skipped" and info["training_time"] == 0.0
    assert info["cell_parameters"] == network_size(CELL)["cell_parameters"]


def test_out_of_memory_is_a_failure_that_is_not_cached(synthetic_data_root, tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(nas_env.training, "train_child", out_of_memory)
    env = gym.make("NASCell-large-v0", blocks=2, protocol=TINY, data_root=synthetic_data_root,
                   cache_path=tmp_path / "c.sqlite", reward="param", budget=1e12)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(CELL.to_action())
    assert reward == -100.0 and info["failure"].startswith("out_of_memory: CUDA out of memory")
    assert len(EvaluationCache(tmp_path / "c.sqlite")) == 0


def test_the_dataset_is_loaded_once(synthetic_data_root, monkeypatch):
    import nas_env.data

    calls = []
    real = nas_env.data.load_dataset
    monkeypatch.setattr(nas_env.data, "load_dataset", lambda *a, **k: calls.append(a) or real(*a, **k))
    evaluator = LiveEvaluator("large", "mnist", TINY, data_root=synthetic_data_root, cache=False,
                              threads=1)
    assert calls == []  # lazily: not at construction
    for ops in (("conv3x3", "identity"), ("identity", "max_pool2x2")):
        evaluator.evaluate(LargeCell([(0, 0, *ops)]))
    assert len(calls) == 1


def test_bad_actions_name_the_allowed_range(make_large):
    env = make_large()
    env.reset(seed=0)
    for action in ([0, 0, 1, 1, 2, 0, 1, 1], [0, 0, 1], [0, 0, 1, 8, 0, 0, 1, 1]):
        with pytest.raises(InvalidArchitectureError, match="outside MultiDiscrete"):
            env.step(action)


def test_train_child_leaves_torch_global_state_alone(synthetic_data):
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    before = torch.random.get_rng_state()
    train_child(CELL, synthetic_data, TINY, seed=5, device="cpu", measure_latency=False,
                threads=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.get_num_threads() == threads


class ArchRecorder(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.archs: list[str] = []
        self.sources: list[str] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            self.archs.append(info["arch"])
        self.sources += [p["source"] for p in self.training_env.get_attr("last_provenance")]
        return True


def ppo_search(env: gym.Env, iterations: int) -> ArchRecorder:
    from agents.ppo_search import make_ppo

    model = make_ppo(env, seed=0, n_steps=4, batch_size=4)
    recorder = ArchRecorder()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 4-sample update gains nothing from more threads
    try:
        model.learn(total_timesteps=4 * iterations, callback=recorder)
    finally:
        torch.set_num_threads(threads)
    return recorder


def test_ppo_searches_live_and_a_rerun_replays_from_the_cache(make_large, tmp_path, monkeypatch):
    """Two PPO iterations on NASCell-large-v0 train children; the same seeded search re-run with
    the same cache samples exactly the same cells (training a child touched no RNG of PPO's) and
    trains nothing; a search interrupted after one iteration continues where it stopped."""
    live = ppo_search(make_large(), iterations=2)
    assert len(live.archs) == 8 and "training" in live.sources

    resumed_cache = tmp_path / "interrupted.sqlite"
    ppo_search(make_large(cache_path=resumed_cache), iterations=1)
    resumed = ppo_search(make_large(cache_path=resumed_cache), iterations=2)
    assert resumed.archs == live.archs
    assert set(resumed.sources[:4]) == {"cache"}

    forbid_training(monkeypatch)
    replay = ppo_search(make_large(), iterations=2)
    assert replay.archs == live.archs and set(replay.sources) == {"cache"}


def test_the_small_env_trains_live_on_fashion_mnist(synthetic_data_root, tmp_path):
    env = gym.make("NASCell-small-v0", evaluator="live", dataset="fashion_mnist", protocol=TINY,
                   data_root=synthetic_data_root, cache_path=tmp_path / "c.sqlite")
    env.reset(seed=0)
    cell = SmallCell("conv3x3", "max_pool2x2")
    _, reward, _, _, info = env.step(cell.to_action())
    assert env.unwrapped.last_provenance["source"] == "training"
    assert info["dataset"] == "fashion_mnist"
    assert info["arch_index"] == cell.index and reward == info["validation_accuracy"]


def test_a_missing_table_is_an_error_that_names_the_live_evaluator():
    with pytest.raises(FileNotFoundError, match="evaluator='live'"):
        gym.make("NASCell-small-v0", protocol="paper")


def test_live_keywords_are_refused_with_a_table(tmp_path):
    with pytest.raises(ValueError, match="cache_path.*evaluator='live'|evaluator='live'"):
        gym.make("NASCell-small-v0", cache_path=tmp_path / "c.sqlite")
    with pytest.raises(ValueError, match="A_large needs evaluator='live'"):
        gym.make("NASCell-large-v0", evaluator="table")


def test_a_missing_dataset_fails_on_the_first_training(tmp_path):
    env = gym.make("NASCell-large-v0", blocks=1, protocol=TINY, data_root=tmp_path / "none",
                   cache_path=tmp_path / "c.sqlite")
    env.reset(seed=0)
    with pytest.raises(DatasetNotFoundError):
        env.step([0, 0, 1, 1])


def test_a_live_evaluator_gives_each_run_its_checkpoint_folder(synthetic_data_root, tmp_path,
                                                                monkeypatch):
    seen = []
    original = nas_env.training.train_child

    def recorded(cell, *args, **kwargs):
        seen.append((kwargs["checkpoint_dir"], kwargs["checkpoint_every"]))
        return original(cell, *args, **kwargs)
    monkeypatch.setattr(nas_env.training, "train_child", recorded)
    folder = tmp_path / "checkpoints"
    evaluator = LiveEvaluator("large", protocol=TINY, data_root=synthetic_data_root, cache=False,
                              threads=1, checkpoint_dir=folder, checkpoint_every=60)
    result = evaluator.evaluate_seed(CELL, 0)
    evaluator.close()
    assert seen == [(str(folder), 60.0)] and result["source"] == "training"
    assert not list(folder.glob("*.pt"))  # a finished run leaves no checkpoint behind


def test_several_seeds_are_trained_together_and_a_repeat_once(synthetic_data_root, tmp_path):
    evaluator = LiveEvaluator("large", protocol=TINY, data_root=synthetic_data_root,
                              cache=tmp_path / "c.sqlite", threads=1)
    other = LargeCell([(0, 0, "conv5x5", "identity")])
    finished = []
    first = evaluator.evaluate_seeds([(CELL, 3), (other, 0), (CELL, 3)],
                                     on_trained=lambda c, s, r: finished.append((c.key, s, r)))
    assert [r["source"] for r in first] == ["training", "training", "cache"]
    # Each run trained is reported as it finishes, once; a cached run is not.
    assert sorted((key, seed) for key, seed, _ in finished) == sorted([(CELL.key, 3), (other.key, 0)])
    assert {r["validation_accuracy"] for *_, r in finished} == \
        {r["validation_accuracy"] for r in first}
    evaluator.evaluate_seeds([(other, 0)], on_trained=lambda *a: finished.append(a))
    assert len(finished) == 2
    assert [r["arch"] for r in first] == [CELL.to_string(), other.to_string(), CELL.to_string()]
    assert first[0]["validation_accuracy"] == first[2]["validation_accuracy"]
    assert evaluator.evaluate_seed(other, 0) == dict(first[1], source="cache")
    assert evaluator.cached_result(CELL, 3)["validation_accuracy"] == first[0]["validation_accuracy"]
    with pytest.raises(ValueError, match="A_small cell"):
        evaluator.evaluate_seeds([(SmallCell("conv3x3", "conv3x3"), 0)])
    evaluator.close()
