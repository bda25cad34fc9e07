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


def test_a_cell_the_reference_lacks_is_named(script, tmp_path, monkeypatch, capsys):
    reference = write(tmp_path / "ref.csv", [("a", 0, 90.0), ("a", 1, 90.4)])
    checked = write(tmp_path / "bf16.csv", [("a", 0, 90.1), ("z", 0, 80.0)])
    monkeypatch.setattr(sys, "argv", ["x", "--table", checked, "--reference", reference])
    with pytest.raises(SystemExit):
        script.main()
    assert "the reference lacks seed 0 or 1 of: z" in capsys.readouterr().err
