"""Comparing two reward tables: rank correlations, cross ranks, and compare_tables.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas_env.benchmark import Reward, RewardTable
from nas_env.spaces import SmallCell
from nas_env.table_compare import cell_ranks, compare_tables, rank_agreement, rank_of

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "small_fixture.csv"


def table_with(tmp_path: Path, name: str, edit) -> RewardTable:
    """The fixture (and its sidecar) with its rows changed by ``edit(df) -> df``."""
    path = tmp_path / f"{name}.csv"
    edit(pd.read_csv(FIXTURE)).to_csv(path, index=False)
    shutil.copy(FIXTURE.with_suffix(".json"), path.with_suffix(".json"))
    return RewardTable(path)


def test_rank_agreement_of_equal_reversed_and_top_subsets():
    ref = np.arange(10, dtype=float)
    same = rank_agreement(ref * 3 + 1, ref, top=4)  # any increasing map ranks alike
    assert same == pytest.approx(
        {"spearman": 1.0, "kendall": 1.0, "spearman_top4": 1.0, "kendall_top4": 1.0})
    reverse = rank_agreement(-ref, ref, top=4)
    assert reverse["spearman"] == pytest.approx(-1.0) and reverse["kendall"] == pytest.approx(-1.0)
    # Agreement everywhere but among the reference's best 3 (7, 8, 9), which are reversed.
    values = ref.copy()
    values[[7, 8, 9]] = [9.0, 8.0, 7.0]
    mixed = rank_agreement(values, ref, top=3)
    assert mixed["spearman_top3"] == pytest.approx(-1.0)
    assert 0.9 < mixed["spearman"] < 1.0


def test_rank_agreement_refuses_mismatched_input():
    with pytest.raises(ValueError, match="same 1-d shape"):
        rank_agreement(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="top must be between 2 and 5"):
        rank_agreement(np.zeros(5), np.arange(5.0), top=6)


def test_rank_of_counts_strictly_better_cells_so_ties_share_a_rank():
    values = np.array([90.0, 99.0, 95.0, 99.0])
    assert [rank_of(values, i) for i in range(4)] == [4, 1, 3, 1]


def test_a_table_against_itself_agrees_perfectly():
    table = RewardTable(FIXTURE)
    result = compare_tables(table, table)
    assert result["spearman"] == pytest.approx(1.0) and result["kendall"] == pytest.approx(1.0)
    best = table.best("val")
    assert result["optimum_a"]["arch"] == result["optimum_b"]["arch"] == best["arch"]
    assert result["optimum_a"]["rank_on_a"] == result["optimum_a"]["rank_on_b"] == 1


def test_a_reversed_table_puts_each_optimum_last_on_the_other(tmp_path):
    a = RewardTable(FIXTURE)

    def reverse(df: pd.DataFrame) -> pd.DataFrame:
        df["validation_accuracy"] = 100.0 - df["validation_accuracy"]
        return df

    b = table_with(tmp_path, "reversed", reverse)
    result = compare_tables(a, b)
    assert result["spearman"] == pytest.approx(-1.0)
    assert result["optimum_a"]["rank_on_a"] == 1 and result["optimum_a"]["rank_on_b"] == 64
    assert result["optimum_b"]["rank_on_b"] == 1 and result["optimum_b"]["rank_on_a"] == 64
    assert result["optimum_b"]["arch"] == SmallCell.from_index(
        int(np.argmin(a.mean["validation_accuracy"]))).to_string()


def test_r_param_ranks_only_cells_under_the_budget_first():
    table = RewardTable(FIXTURE)
    reward = Reward.from_keywords("param")
    result = compare_tables(table, table, reward)
    assert result["optimum_a"]["arch"] == table.best(reward)["arch"]
    big = int(np.argmax(table.mean["cell_parameters"]))  # over any budget: penalised
    ranks = cell_ranks(table, table, big, reward)
    assert ranks["reward_a"] == -100.0
    feasible = int(reward.budget_met(table.mean["cell_parameters"]).sum())
    assert ranks["rank_on_a"] == feasible + 1


def test_compare_tables_script_prints_writes_json_and_a_figure(tmp_path):
    def shift_best(df: pd.DataFrame) -> pd.DataFrame:
        # Make the fixture's worst cell the best on "B".
        worst = df.groupby("arch_index")["validation_accuracy"].mean().idxmin()
        df.loc[df["arch_index"] == worst, "validation_accuracy"] = 99.9
        return df

    b = table_with(tmp_path, "b", shift_best)
    figure, out = tmp_path / "scatter.png", tmp_path / "out.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "compare_tables.py"), "--table-a",
         str(FIXTURE), "--table-b", str(b.path), "--figure", str(figure), "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "## r_val" in run.stdout and "## r_param" in run.stdout
    assert figure.stat().st_size > 1000
    data = json.loads(out.read_text())
    assert data["val"]["optimum_b"]["rank_on_b"] == 1
    assert data["val"]["optimum_b"]["rank_on_a"] == 64
    assert data["val"]["paper_best"]["cell"] == "<3x3 conv, max>"
    assert "spearman" not in data["param"]  # penalty ties would only measure cell size
