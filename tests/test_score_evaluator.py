"""The training-free evaluator: percentile rewards from zero-cost scores, cached, behind the same
env interface as training (synthetic data, a tiny scored net)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import nas_env  # noqa: F401  (registers the ids)
from nas_env.cache import EvaluationCache
from nas_env.protocols import ScoreProtocol
from nas_env.score_evaluator import ScoreEvaluator, percentile
from nas_env.spaces import LargeCell, SmallCell

TINY = ScoreProtocol("tiny-vote", ("synflow", "naswot"), inits=1, batch_size=16, filters=(4, 8),
                     fc_units=16, reference_cells=6)
CELL = LargeCell([(0, 0, "conv3x3", "max_pool2x2"), (1, 0, "identity", "sep_conv3x3")])


def test_percentile_counts_ties_half_and_failed_scores_lowest():
    sample = np.array([1.0, 2.0, 2.0, 3.0, -np.inf])
    assert percentile(2.0, sample) == 100 * (2 + 1) / 5
    assert percentile(10.0, sample) == 100.0
    assert percentile(float("nan"), sample) == 100 * 0.5 / 5  # ties with the failed one


def test_a_small_cell_is_rewarded_by_its_exact_rank_among_all_64(synthetic_data_root, tmp_path):
    protocol = ScoreProtocol("s", ("params",), inits=1, batch_size=8, filters=(2, 4), fc_units=8)
    evaluator = ScoreEvaluator("small", "mnist", protocol,
                               data_root=synthetic_data_root, cache=tmp_path / "c.sqlite")
    params = {c.index: evaluator.raw_scores(c)["proxy_scores"]["params"] for c in SmallCell.all()}
    largest = max(params, key=params.get)
    result = evaluator.evaluate(SmallCell.from_index(largest))
    assert result["score"] == pytest.approx(100 * (63 + 0.5) / 64)
    assert math.isnan(result["validation_accuracy"]) and result["protocol"] == "s"


def test_scores_are_cached_and_shared_by_protocols_with_the_same_scoring(
        synthetic_data_root, tmp_path):
    cache = tmp_path / "c.sqlite"
    first = ScoreEvaluator("large", "mnist", TINY, data_root=synthetic_data_root, cache=cache)
    result = first.evaluate(CELL)
    assert 0 <= result["score"] <= 100 and result["source"] == "training"
    assert len(EvaluationCache(cache)) == 1 + TINY.reference_cells
    other = ScoreProtocol("tiny-zico", ("zico",), inits=1, batch_size=16, filters=(4, 8),
                          fc_units=16, reference_cells=6)
    second = ScoreEvaluator("large", "mnist", other, data_root=synthetic_data_root, cache=cache)
    again = second.evaluate(CELL)
    assert again["source"] == "cache" and again["proxy_scores"] == result["proxy_scores"]
    assert len(EvaluationCache(cache)) == 1 + TINY.reference_cells  # nothing scored again


def test_rows_scored_by_a_version_with_other_scores_are_not_served(
        synthetic_data_root, tmp_path, monkeypatch):
    # A row holds every score the version that wrote it knew; a protocol that averages a score
    # added since must not be served a row without it.
    import nas_env.zero_cost as zero_cost

    cache = tmp_path / "c.sqlite"
    older = {k: v for k, v in zero_cost.SCORES.items() if k != "meco"}
    monkeypatch.setattr(zero_cost, "SCORES", older)
    old_row = ScoreEvaluator("large", "mnist", TINY, data_root=synthetic_data_root,
                             cache=cache).raw_scores(CELL)
    assert "meco" not in old_row["proxy_scores"]
    monkeypatch.undo()
    with_meco = ScoreProtocol("tiny-meco", ("meco",), inits=1, batch_size=16, filters=(4, 8),
                              fc_units=16, reference_cells=6)
    now = ScoreEvaluator("large", "mnist", with_meco, data_root=synthetic_data_root, cache=cache)
    row = now.raw_scores(CELL)
    assert row["source"] == "training" and "meco" in row["proxy_scores"]
    assert len(EvaluationCache(cache)) == 2  # both rows kept, each under its own identity


def test_the_large_env_searches_on_a_training_free_protocol(synthetic_data_root, tmp_path):
    env = gym.make("NASCell-large-v0", blocks=2, protocol=TINY, data_root=synthetic_data_root,
                   cache_path=tmp_path / "c.sqlite", threads=1)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(np.array(CELL.to_action()))
    assert terminated and not truncated
    assert reward == info["score"] and 0 <= reward <= 100
    assert set(info["proxy_scores"]) >= {"synflow", "naswot", "zico", "params"}
    # Same seed, same action: the same reward.
    env.reset(seed=0)
    assert env.step(np.array(CELL.to_action()))[1] == reward


def test_a_training_free_protocol_refuses_training_keywords(synthetic_data_root):
    with pytest.raises(ValueError, match="train_seeds"):
        gym.make("NASCell-large-v0", protocol="zc-vote", train_seeds=[0, 1],
                 data_root=synthetic_data_root)
    with pytest.raises(ValueError, match="evaluator='live'"):
        gym.make("NASCell-small-v0", protocol="zc-vote")
    with pytest.raises(ValueError, match="latency"):
        gym.make("NASCell-large-v0", protocol="zc-vote", data_root=synthetic_data_root,
                 reward="param", budget_metric="latency_ms", budget=5.0)


def test_a_hybrid_protocol_counts_the_trained_accuracy_as_one_more_vote(
        synthetic_data_root, tmp_path):
    hybrid = ScoreProtocol("tiny-hybrid", ("synflow",), inits=1, batch_size=16, filters=(4, 8),
                           fc_units=16, reference_cells=4, training="cheap")
    evaluator = ScoreEvaluator("large", "mnist", hybrid, data_root=synthetic_data_root,
                               cache=tmp_path / "c.sqlite", threads=1)
    result = evaluator.evaluate(CELL)
    sample = evaluator.reference_sample(CELL)
    expected = np.mean([percentile(result["proxy_scores"]["synflow"], sample["synflow"]),
                        percentile(result["validation_accuracy"],
                                   sample["trained validation accuracy"])])
    assert result["score"] == pytest.approx(expected)
    assert result["validation_accuracy"] > 0 and result["loss_curve"]  # the trained record
    assert result["protocol"] == "tiny-hybrid"
    # The reference cells and the cell itself were trained once and are cached.
    assert evaluator.evaluate(CELL)["source"] == "cache"
    with pytest.raises(ValueError, match="train_seeds"):
        ScoreEvaluator("large", "mnist", TINY, data_root=synthetic_data_root, train_seeds=[0, 1])
