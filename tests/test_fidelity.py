"""Rank figures of a candidate reward against a reference, and the score combiners."""

from __future__ import annotations

import numpy as np
import pytest

from nas_env.fidelity import RankModel, rank_average, rank_fidelity, spearman_text, top_overlap

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
