"""Rank figures of a candidate reward against a reference, and the score combiners."""

from __future__ import annotations

import numpy as np
import pytest

from nas_env.fidelity import (RankModel, noise_free_spearman, rank_average, rank_fidelity,
                              seed_reliability, spearman_text, top_overlap)

REFERENCE = np.linspace(80.0, 99.0, 64)


def test_a_perfect_and_a_reversed_ranking():
    same = rank_fidelity(REFERENCE * 2 + 1, REFERENCE, resamples=200)
    assert same["spearman"] == pytest.approx(1.0) and same["kendall"] == pytest.approx(1.0)
    assert same["kendall_top16"] == pytest.approx(1.0) and same["top10pct_overlap"] == 1.0
    assert same["spearman_ci"] == pytest.approx([1.0, 1.0])
    reversed_ = rank_fidelity(-REFERENCE, REFERENCE, resamples=200)
    assert reversed_["spearman"] == pytest.approx(-1.0) and reversed_["top10pct_overlap"] == 0.0


def test_a_noisy_ranking_has_an_interval_around_it_and_is_seeded():
    rng = np.random.default_rng(0)
    noisy = REFERENCE + rng.normal(0, 5, 64)
    figures = rank_fidelity(noisy, REFERENCE)
    lo, hi = figures["spearman_ci"]
    assert 0 < lo < figures["spearman"] < hi < 1
    assert rank_fidelity(noisy, REFERENCE) == figures


def test_top_overlap_counts_the_reference_best_found_among_the_candidate_best():
    values = REFERENCE.copy()
    values[-1] = 0.0  # the best cell predicted worst: 6 of the best 7 found
    assert top_overlap(values, REFERENCE, 0.1) == pytest.approx(6 / 7)


def test_a_failed_score_ranks_lowest_instead_of_breaking_the_figures():
    values = REFERENCE.copy()
    values[0] = -np.inf
    assert rank_fidelity(values, REFERENCE, resamples=50)["spearman"] == pytest.approx(1.0)


def test_rank_average_and_a_model_fitted_on_one_set_applied_to_another():
    good, useless = REFERENCE, np.tile([1.0, 0.0], 32)
    assert rank_fidelity(rank_average({"a": good, "b": good}), REFERENCE,
                         resamples=50)["spearman"] == pytest.approx(1.0)
    model = RankModel.fit({"good": good, "useless": useless}, REFERENCE)
    assert model.weights[0] > 0.9 and abs(model.weights[1]) < 0.1
    other = np.linspace(0.1, 0.9, 64)  # another set of cells, another scale
    predicted = model.predict({"good": other, "useless": np.zeros(64)})
    assert rank_fidelity(predicted, other, resamples=50)["spearman"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="needs the scores"):
        model.predict({"good": other})


def test_spearman_text_prints_the_figure_as_the_docs_tables_do():
    figures = {"cells": 8, "spearman": 0.6667, "spearman_ci": [-0.2329, 0.918]}
    assert spearman_text(figures) == "0.67 [-0.23, 0.92]"
    assert spearman_text(figures, cells=True) == "0.67 [-0.23, 0.92] (8)"
    assert spearman_text(None) == "n/a"


def test_seed_reliability_is_the_spearman_brown_prophecy():
    assert seed_reliability(0.5, 1) == pytest.approx(0.5)
    assert seed_reliability(0.5, 2) == pytest.approx(2 / 3)
    assert seed_reliability(0.5, 4) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="seeds=0"):
        seed_reliability(0.5, 0)


def _runs(signal, noise, seeds, rng):
    return np.stack([signal + rng.normal(0, noise, len(signal)) for _ in range(seeds)])


def test_noise_free_spearman_separates_seed_noise_from_bias():
    """A candidate that is the truth plus seed noise ranks far below 1 but is noise-free near 1;
    one whose noise-free figure stays low is biased, and more of its seeds would not help."""
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1, 400)
    reference = _runs(truth, 0.3, 2, rng)
    noisy = noise_free_spearman(_runs(truth, 1.0, 2, rng), reference, resamples=200)
    assert noisy["candidate_seeds"] == 2 and noisy["cells"] == 400
    assert noisy["candidate_agreement"] < 0.6 and noisy["reference_agreement"] > 0.85
    assert noisy["spearman"] < 0.8
    lo, hi = noisy["noise_free_ci"]
    assert lo < 1.0 < hi and noisy["noise_free"] == pytest.approx(1.0, abs=0.06)
    biased_signal = 0.5 * truth + np.sqrt(0.75) * rng.normal(0, 1, 400)  # correlation 0.5
    biased = noise_free_spearman(_runs(biased_signal, 1.0, 2, rng), reference, resamples=200)
    assert biased["noise_free"] == pytest.approx(0.5, abs=0.08)
    assert biased["noise_free_ci"][1] < 0.7
    again = noise_free_spearman(_runs(biased_signal, 1.0, 2, np.random.default_rng(5)), reference,
                                resamples=50, seed=1)
    assert again == noise_free_spearman(_runs(biased_signal, 1.0, 2, np.random.default_rng(5)),
                                        reference, resamples=50, seed=1)


def test_noise_free_spearman_needs_two_seeds_a_side_and_the_same_cells():
    runs = np.arange(20.0).reshape(2, 10)
    with pytest.raises(ValueError, match="at least two seeds"):
        noise_free_spearman(runs[:1], runs)
    with pytest.raises(ValueError, match="same cells"):
        noise_free_spearman(runs, runs[:, :9])
    with pytest.raises(ValueError, match="not finite"):
        noise_free_spearman(np.where(runs == 3.0, np.nan, runs), runs)
    # Seeds that disagree completely leave nothing to correct: no figure rather than a wrong one.
    assert np.isnan(noise_free_spearman(np.stack([runs[0], -2 * runs[0]]), runs,
                                        resamples=20)["noise_free"])
