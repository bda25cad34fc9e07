"""Protocols read by their late training loss (``signal="late_loss"``, e.g. ``loss16k``): the loss
curve's own points, the score a run records, the reward an env gives, and identities that leave
every earlier protocol's runs where they were."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import nas_env  # noqa: F401  (registers the ids)
from nas_env.evaluation.records import mean_result
from nas_env.evaluators import LiveEvaluator
from nas_env.protocols import ADDED_FIELDS, PROTOCOLS, Protocol, get_protocol
from nas_env.spaces import LargeCell
from nas_env.training import late_loss_score, train_child

ROOT = Path(__file__).resolve().parents[1]
LATE = Protocol("tiny-late", epochs=1, lr=1e-2, schedule="onecycle", batch_size=32,
                checkpoints_per_epoch=1, filters=(4, 8), fc_units=32, precision="fp32",
                loss_points_per_epoch=2, signal="late_loss")
CELL = LargeCell([(0, 0, "conv3x3", "max_pool2x2"), (1, 0, "identity", "sep_conv3x3")])


@pytest.fixture(scope="module")
def late_run(synthetic_data):
    return train_child(CELL, synthetic_data, LATE, seed=0, device="cpu", measure_latency=False)


def test_the_score_is_the_likelihood_of_the_loss_curves_last_point(late_run):
    # 300 images at 10% validation: 270 to train, 9 steps of 32; points at steps 4 and 9.
    assert [epoch for epoch, _ in late_run["loss_curve"]] == [pytest.approx(4 / 9, abs=1e-4), 1.0]
    assert [epoch for epoch, _ in late_run["val_curve"]] == [1.0]
    assert late_run["score"] == pytest.approx(100 * math.exp(-late_run["loss_curve"][-1][1]))
    assert 0 < late_run["score"] < 100
    # The two points are the means of their own steps: together, the summed loss.
    (_, first), (_, second) = late_run["loss_curve"]
    assert late_run["train_loss_sum"] == pytest.approx(4 * first + 5 * second)


def test_validating_more_often_or_on_more_images_does_not_change_the_training(
        late_run, synthetic_data):
    # As loss16k trains images16k's runs step for step: validation draws no random numbers.
    validated = Protocol(**{**LATE.as_dict(), "checkpoints_per_epoch": 2, "val_images": None,
                            "signal": "validation_accuracy"})
    other = train_child(CELL, synthetic_data, validated, seed=0, device="cpu",
                        measure_latency=False)
    assert other["loss_curve"] == late_run["loss_curve"]
    assert len(other["val_curve"]) == 2 and other["score"] is None


def test_a_diverged_run_scores_zero_and_never_nan():
    assert late_loss_score([[0.5, float("nan")]], diverged=True) == 0.0
    assert late_loss_score([[0.5, float("inf")]], diverged=False) == 0.0
    assert late_loss_score([], diverged=False) == 0.0
    assert late_loss_score([[1.0, 0.0]], diverged=False) == 100.0


def test_seeds_average_their_scores():
    runs = [{"validation_accuracy": v, "test_accuracy": v, "training_time": 1.0, "val_curve": [],
             "loss_curve": [], "latency_ms": None, "train_loss_sum": 1.0, "evaluation_time": 0.0,
             "diverged": False, "failure": None, "source": "training", "score": s}
            for v, s in ((90.0, 60.0), (92.0, 70.0))]
    assert mean_result(runs)["score"] == 65.0
    runs[1]["score"] = None  # a protocol read by validation accuracy has none
    assert mean_result(runs)["score"] is None


def test_the_env_rewards_the_score_and_caches_it(synthetic_data_root, tmp_path):
    env = gym.make("NASCell-large-v0", blocks=2, protocol=LATE, data_root=synthetic_data_root,
                   cache_path=tmp_path / "c.sqlite", threads=1)
    env.reset(seed=0)
    action = env.action_space.sample()
    _, reward, terminated, _, info = env.step(action)
    assert terminated and env.unwrapped.last_provenance["source"] == "training"
    assert reward == pytest.approx(info["score"]) and reward != info["validation_accuracy"]
    env.close()
    again = LiveEvaluator("large", "mnist", LATE, data_root=synthetic_data_root,
                          cache=tmp_path / "c.sqlite", threads=1)
    assert again.reward_key == "score"
    cached = again.evaluate(LargeCell.from_action(action))
    assert cached["source"] == "cache" and cached["score"] == info["score"]
    assert LiveEvaluator("large", "mnist", "cheap", cache=False).reward_key == \
        "validation_accuracy"


def test_loss16k_is_images16k_read_by_its_late_loss():
    loss16k = PROTOCOLS["loss16k"]
    assert (loss16k.train_images, loss16k.batch_size, loss16k.lr, loss16k.filters,
            loss16k.fc_units, loss16k.precision) == (16_000, 64, 5e-3, (8, 16), 128, "fp32")
    assert (loss16k.loss_points, loss16k.checkpoints_per_epoch, loss16k.signal) == \
        (2, 1, "late_loss")
    assert get_protocol(loss16k.as_dict()) == loss16k


@pytest.mark.parametrize("field, message", [
    ({"signal": "loss"}, "signal='loss'; allowed: validation_accuracy, late_loss"),
    ({"loss_points_per_epoch": 0}, "loss_points_per_epoch=0; allowed: an integer >= 1"),
])
def test_bad_fields_name_what_is_allowed(field, message):
    with pytest.raises(ValueError, match=message):
        Protocol(**{**LATE.as_dict(), **field})


def test_the_new_fields_leave_earlier_protocols_identities_alone():
    for name in ("paper", "fast", "cheap"):
        assert not set(ADDED_FIELDS) & set(PROTOCOLS[name].as_dict())
    # A shipped cache row of cheap's, stored before the fields existed, is still its identity.
    path = ROOT / "reward_tables/evaluations/large_mnist_cheap.sqlite"
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # read, leave no -wal or -shm
    stored = json.loads(db.execute("SELECT identity FROM results LIMIT 1").fetchone()[0])
    db.close()
    record = PROTOCOLS["cheap"].as_dict()
    assert stored["protocol"] == {**record, "filters": list(record["filters"])}
    # Set, they are part of it.
    assert set(ADDED_FIELDS) <= set(LATE.as_dict())


def test_the_shipped_loss12k_tables_are_rewarded_by_their_score():
    from nas_env.benchmark import RewardTable, table_path

    for dataset in ("mnist", "fashion_mnist"):
        table = RewardTable(table_path(dataset, "loss12k"))
        assert table.reward_key == "score" and table.meta["protocol"]["signal"] == "late_loss"
        best = table.best()
        assert best["reward"] == pytest.approx(table.mean["score"].max())
        assert best["score"] == pytest.approx(best["reward"])
        spreads = [row.max() - row.min() for row in table.per_seed["score"]]
        assert table.seed_noise() == pytest.approx(float(np.median(spreads)))
    env = gym.make("NASCell-small-v0", protocol="loss12k", dataset="fashion_mnist")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.array([1, 4]))
    assert reward == pytest.approx(info["score"]) and 0 < reward < 100
    assert reward != info["validation_accuracy"]
    with pytest.raises(ValueError, match="rewarded by its score"):
        gym.make("NASCell-small-v0", protocol="loss12k", dataset="fashion_mnist", fidelity=0.5)


def test_a_late_loss_table_is_what_the_cache_exports(tmp_path):
    from nas_env.cache import EvaluationCache
    from nas_env.tables.builder import export_cache_table

    cache = EvaluationCache(ROOT / "reward_tables/evaluations/fidelity_small.sqlite")
    exported = export_cache_table(cache, "mnist", "loss12k", tmp_path)
    shipped = pd.read_csv(ROOT / "reward_tables/small_mnist_loss12k.csv")
    assert list(pd.read_csv(exported).columns) == list(shipped.columns)
    assert list(shipped.columns)[-1] == "score"
    pd.testing.assert_frame_equal(pd.read_csv(exported), shipped)


@pytest.mark.parametrize("change, message", [
    (lambda df: df.drop(columns="score"), "has no score column"),
    (lambda df: df.assign(score=df["score"] + 100), "score must be a number in \\[0, 100\\]"),
])
def test_a_broken_late_loss_table_is_refused_with_its_reason(tmp_path, change, message):
    from nas_env.benchmark import RewardTable, RewardTableError

    source = ROOT / "reward_tables/small_mnist_loss12k"
    change(pd.read_csv(source.with_suffix(".csv"))).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.json").write_text(source.with_suffix(".json").read_text())
    with pytest.raises(RewardTableError, match=message):
        RewardTable(tmp_path / "t.csv")
