"""experiments/large_default.py: the rule that picks NASCell-large-v0's default reward."""

import json

import numpy as np
import pandas as pd
import pytest

from nas_env.spaces import LargeCell


def _write_set(tmp_path, values_by_candidate: dict[str, np.ndarray], random_cells: int = 8,
               listed_random: int = 8, exp3: int = 4, missing: dict[str, int] | None = None):
    """A cell list of ``listed_random`` random and ``exp3`` experiment-3 cells, and one
    bench_fidelity.py record per candidate over the first ``random_cells`` random cells and the
    experiment-3 cells (less cell ``missing[name]`` for a candidate named there); the reference
    accuracy of cell i is i."""
    origins = [f"random draw (seed 30) #{i + 1}" for i in range(listed_random)]
    origins += [f"experiment 3 best #{i + 1}" for i in range(exp3)]
    # The list keeps each cell as drawn; bench_fidelity.py names it by its canonical key.
    rng = np.random.default_rng(0)
    drawn = [LargeCell.from_action([int(rng.integers(n)) for n in LargeCell.action_nvec(5)])
             for _ in origins]
    assert any(c.to_string() != c.key for c in drawn)
    archs = [c.key for c in drawn]
    pd.DataFrame({"arch": [c.to_string() for c in drawn], "origin": origins}).to_csv(
        tmp_path / "cells.csv", index=False)
    present = list(range(random_cells)) + list(range(listed_random, listed_random + exp3))
    folder = tmp_path / "large"
    folder.mkdir()
    for name, values in values_by_candidate.items():
        record = {"candidate": name, "model": None, "large_reference_cells": [
            {"arch": archs[i], "reference": float(i), "seeds": 1, "value": float(values[i])}
            for i in present if i != (missing or {}).get(name)]}
        (folder / f"{name.split()[0]}.json").write_text(json.dumps(record))
    return folder, tmp_path / "cells.csv"


def _run(load_script, monkeypatch, capsys, folder, cells):
    script = load_script("large_default")
    monkeypatch.setattr("sys.argv", ["large_default.py", str(folder), "--cells", str(cells)])
    script.main()
    return capsys.readouterr().out


def test_groups_follow_the_cell_list(load_script):
    script = load_script("large_default")
    assert script.group_of("random draw (seed 30) #1") == "choice half"
    assert script.group_of("random draw (seed 30) #40") == "held-out half"
    assert script.group_of("experiment 3 worst #10") == "experiment 3"
    with pytest.raises(ValueError, match="expected 'random draw"):
        script.group_of("hand-picked")


def test_rank_models_and_the_summed_loss_are_not_candidates(load_script):
    script = load_script("large_default")
    assert script.is_candidate({"candidate": "cheap (validation accuracy)", "model": None})
    assert not script.is_candidate({"candidate": "cheap (-TSE)", "model": None})
    assert not script.is_candidate({"candidate": "model(synflow)", "model": {"weights": [1]}})


def test_a_clear_winner_replaces_cheap(load_script, monkeypatch, capsys, tmp_path):
    n = 12
    perfect = np.arange(n, dtype=float)
    # cheap agrees with the reference on the held-out cells only; reversed on the choice half.
    cheap = np.where(np.arange(n) % 2 == 0, -perfect, perfect)
    folder, cells = _write_set(tmp_path, {"synflow (score)": perfect,
                                          "cheap (validation accuracy)": cheap})
    out = _run(load_script, monkeypatch, capsys, folder, cells)
    assert "default: synflow (score) replaces `cheap` (1.00 against -1.00" in out
    # synflow ranks every group perfectly: choice half, held-out half, experiment 3, all.
    assert "| synflow (score) | 1.00 [1.00, 1.00] (4) | 1.00 [1.00, 1.00] (4) | 1.00" in out


def test_cheap_stays_unless_beaten_by_the_margin(load_script, monkeypatch, capsys, tmp_path):
    rng = np.random.default_rng(0)
    noisy = np.arange(12, dtype=float) + rng.normal(0, 0.01, 12)
    folder, cells = _write_set(tmp_path, {"synflow (score)": noisy,
                                          "cheap (validation accuracy)": noisy + 1e-3})
    out = _run(load_script, monkeypatch, capsys, folder, cells)
    assert "default: `cheap` stays" in out


def test_nothing_is_decided_before_every_random_cell_is_in(load_script, monkeypatch, capsys,
                                                          tmp_path):
    values = np.arange(14, dtype=float)
    folder, cells = _write_set(tmp_path, {"synflow (score)": values,
                                          "cheap (validation accuracy)": -values},
                               random_cells=6, listed_random=10)
    out = _run(load_script, monkeypatch, capsys, folder, cells)
    assert "not decided: the set has 6 of its 10 random cells" in out


def test_candidates_are_ranked_on_the_cells_all_of_them_have(load_script, monkeypatch, capsys,
                                                            tmp_path):
    values = np.arange(14, dtype=float)
    # synflow's file lacks random cell #2 (a held-out cell): it is left out for cheap too.
    folder, cells = _write_set(tmp_path, {"synflow (score)": values,
                                          "cheap (validation accuracy)": -values},
                               random_cells=10, listed_random=10, missing={"synflow (score)": 1})
    out = _run(load_script, monkeypatch, capsys, folder, cells)
    assert "| cheap (validation accuracy) | -1.00 [-1.00, -1.00] (5) | -1.00 [-1.00, -1.00] (4) |" \
        in out
    assert "not decided: the set has 9 of its 10 random cells" in out
