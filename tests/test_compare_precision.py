"""compare_precision.py: a few retrained cells against a reference table's same seed and its
seed-to-seed spread."""

from __future__ import annotations

import sys

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("compare_precision")


def write(path, rows):
    pd.DataFrame(rows, columns=["arch", "seed", "validation_accuracy"]).to_csv(path, index=False)
    return str(path)


def test_differences_against_the_same_seed_and_the_reference_spread(script, tmp_path, capsys,
                                                                      monkeypatch):
    reference = write(tmp_path / "ref.csv", [("a", 0, 90.0), ("a", 1, 90.4), ("b", 0, 89.0),
                                             ("b", 1, 88.8), ("c", 0, 85.0), ("c", 1, 85.0)])
    checked = write(tmp_path / "bf16.csv", [("a", 0, 90.1), ("b", 0, 88.7), ("c", 0, 85.0)])
    monkeypatch.setattr(sys, "argv", ["x", "--table", checked, "--reference", reference])
    script.main()
    out = capsys.readouterr().out
    assert "3 cells" in out
    assert "checked - reference (seed 0): mean |difference| 0.133, largest 0.300" in out
    assert "reference seed 1 - seed 0: mean |difference| 0.200, largest 0.400" in out


def test_a_cell_the_reference_lacks_is_left_out_and_named(script, tmp_path, monkeypatch, capsys):
    reference = write(tmp_path / "ref.csv", [("a", 0, 90.0), ("a", 1, 90.4), ("b", 0, 89.0),
                                             ("b", 1, 88.8), ("y", 0, 70.0)])
    checked = write(tmp_path / "bf16.csv", [("a", 0, 90.1), ("b", 0, 88.7), ("y", 0, 71.0),
                                            ("z", 0, 80.0)])
    monkeypatch.setattr(sys, "argv", ["x", "--table", checked, "--reference", reference])
    script.main()
    out = capsys.readouterr().out
    assert "2 cells" in out and "left out, the reference lacks seed 0 and seed 1 of: y, z" in out
    assert "checked - reference (seed 0): mean |difference| 0.200, largest 0.300" in out


def test_too_few_shared_cells_is_an_error_that_names_them(script, tmp_path, monkeypatch, capsys):
    reference = write(tmp_path / "ref.csv", [("a", 0, 90.0), ("a", 1, 90.4)])
    checked = write(tmp_path / "bf16.csv", [("a", 0, 90.1), ("z", 0, 80.0)])
    monkeypatch.setattr(sys, "argv", ["x", "--table", checked, "--reference", reference])
    with pytest.raises(SystemExit):
        script.main()
    err = capsys.readouterr().err
    assert "holds seed 0 and seed 1 of 1 of the table's cells; at least 2 are needed (it lacks: z)" in err


def test_a_reference_with_one_seed_so_far(script, tmp_path, monkeypatch, capsys):
    reference = write(tmp_path / "ref.csv", [("a", 0, 90.0), ("b", 0, 89.0), ("c", 0, 85.0)])
    checked = write(tmp_path / "ref32.csv", [("a", 0, 91.0), ("b", 0, 89.5), ("c", 0, 86.0),
                                             ("d", 0, 88.0)])
    monkeypatch.setattr(sys, "argv", ["x", "--table", checked, "--reference", reference,
                                      "--other-seed", "none"])
    script.main()
    out = capsys.readouterr().out
    assert "3 cells" in out and "left out, the reference lacks seed 0 of: d" in out
    assert "mean difference +0.833, Spearman 1.000" in out and "reference seed 1" not in out


def test_a_cell_list_keeps_only_its_cells(script, tmp_path, monkeypatch, capsys):
    reference = write(tmp_path / "ref.csv", [("a", 0, 90.0), ("b", 0, 89.0), ("c", 0, 85.0),
                                             ("d", 0, 88.0)])
    checked = write(tmp_path / "fast3.csv", [("a", 0, 91.0), ("b", 0, 92.0), ("c", 0, 86.0),
                                             ("d", 0, 93.0)])
    cells = tmp_path / "sample.csv"
    pd.DataFrame({"arch": ["a", "c", "d", "e"], "origin": ["#1", "#3", "#4", "#5"]}).to_csv(cells, index=False)
    monkeypatch.setattr(sys, "argv", ["x", "--table", checked, "--reference", reference,
                                      "--other-seed", "none", "--cells", str(cells)])
    script.main()
    out = capsys.readouterr().out
    assert "3 cells" in out and "| b " not in out
    assert "mean difference +2.333, Spearman 0.500" in out
    assert "left out, the table lacks seed 0 of 1 listed cells: e" in out


def test_a_cell_list_without_arch_is_refused(script, tmp_path, monkeypatch, capsys):
    table = write(tmp_path / "t.csv", [("a", 0, 91.0), ("b", 0, 92.0)])
    cells = tmp_path / "sample.csv"
    pd.DataFrame({"cell": ["a", "b"]}).to_csv(cells, index=False)
    monkeypatch.setattr(sys, "argv", ["x", "--table", table, "--reference", table,
                                      "--other-seed", "none", "--cells", str(cells)])
    with pytest.raises(SystemExit):
        script.main()
    assert "no 'arch' column (it has: cell)" in capsys.readouterr().err
