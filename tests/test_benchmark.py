"""The reward-table query API, on the checked-in fixture table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas_env.benchmark import (
    METRICS,
    R_PARAM_PENALTY,
    TABLE_COLUMNS,
    Reward,
    RewardTable,
    RewardTableError,
    load_table,
    table_path,
)
from nas_env.results import RESULT_KEYS
from nas_env.spaces import InvalidArchitectureError, SmallCell

FIXTURE = Path(__file__).parent / "fixtures" / "small_fixture.csv"
REPO = Path(__file__).resolve().parents[1]
QUERY_KEYS = set(RESULT_KEYS)  # a lookup is the same record as a training run


@pytest.fixture(scope="module")
def table() -> RewardTable:
    return RewardTable(FIXTURE)


def write_variant(tmp_path: Path, edit, name: str = "table.csv") -> Path:
    """Copy the fixture and its sidecar to ``tmp_path`` with its rows changed by ``edit(df) -> df``."""
    path = tmp_path / name
    edit(pd.read_csv(FIXTURE)).to_csv(path, index=False)
    shutil.copy(FIXTURE.with_suffix(".json"), path.with_suffix(".json"))
    return path


def test_fixture_has_the_builders_columns():
    assert tuple(pd.read_csv(FIXTURE).columns) == TABLE_COLUMNS


def test_fixture_sizes_are_exact(table):
    from nas_env.child_net import network_size

    cell = SmallCell("conv3x3", "max_pool2x2")
    result = table.query(cell)
    assert {k: result[k] for k in ("trainable_parameters", "cell_parameters", "flops")} == network_size(cell)


def test_every_way_to_name_a_cell_gives_the_same_result(table):
    cell = SmallCell("conv3x3", "max_pool2x2")
    expected = table.query(cell)
    for arch in (cell.to_string(), cell.index, np.int64(cell.index), cell.to_action(),
                 np.array(cell.to_action()), tuple(cell.to_action())):
        assert table.query(arch) == expected
    assert expected["arch"] == cell.to_string() and expected["arch_index"] == cell.index


def test_query_is_a_plain_dict_with_snake_case_keys(table):
    for seed_mode in ("mean", "sample"):
        result = table.query(0, seed_mode=seed_mode, rng=0)
        assert set(result) == QUERY_KEYS
        assert all(not isinstance(v, np.generic) for v in result.values())


def test_mean_averages_the_seeds(table):
    df = table.df
    means = df.groupby("arch")[["validation_accuracy", "test_accuracy", "training_time"]].mean()
    for cell in SmallCell.all():
        result = table.query(cell)
        assert result["seed"] is None and result["num_seeds"] == 2
        for key in means.columns:
            assert result[key] == pytest.approx(means.loc[cell.to_string(), key])


def test_sample_draws_one_seeds_row_reproducibly(table):
    df = table.df.set_index(["arch", "seed"])
    cell = SmallCell("conv5x5", "conv5x5")
    draws = [table.query(cell, seed_mode="sample", rng=np.random.default_rng(s)) for s in range(20)]
    assert {d["seed"] for d in draws} == {0, 1}
    for d in draws:
        assert d["validation_accuracy"] == df.loc[(d["arch"], d["seed"]), "validation_accuracy"]
    assert table.query(cell, seed_mode="sample", rng=3) == table.query(cell, seed_mode="sample", rng=3)


def test_batch_query_equals_single_queries(table):
    actions = np.array([cell.to_action() for cell in SmallCell.all()] * 3)
    batch = table.query_batch(actions)
    for i, action in enumerate(actions):
        single = table.query(action)
        for key in METRICS:
            assert batch[key][i] == single[key]
    np.testing.assert_array_equal(batch["arch_index"], np.tile(np.arange(64), 3))

    sampled = table.query_batch(actions, seed_mode="sample", rng=7)
    rng = np.random.default_rng(7)
    singles = [table.query(a, seed_mode="sample", rng=rng) for a in actions]
    np.testing.assert_array_equal(sampled["seed"], [s["seed"] for s in singles])
    np.testing.assert_array_equal(sampled["validation_accuracy"], [s["validation_accuracy"] for s in singles])


def test_cells_with_fewer_seeds_average_and_sample_the_seeds_they_have(tmp_path):
    """A build in progress adds seed 1 cell by cell: cells 32-63 have seed 0 only. Loading it is
    an error unless asked for."""
    path = write_variant(tmp_path, lambda df: df[(df["seed"] == 0) | (df["arch_index"] < 32)])
    with pytest.raises(RewardTableError, match=r"different numbers of training seeds \(32 with 1 "
                                               r"seed, 32 with 2 seeds\).*allow_partial=True"):
        RewardTable(path)
    table = RewardTable(path, allow_partial=True)
    assert table.num_seeds.tolist() == [2] * 32 + [1] * 32
    seed0 = table.df.query("seed == 0").set_index("arch_index")["validation_accuracy"]
    assert table.query(40)["validation_accuracy"] == seed0[40]
    actions = np.array([cell.to_action() for cell in SmallCell.all()] * 4)
    sampled = table.query_batch(actions, seed_mode="sample", rng=5)
    rng = np.random.default_rng(5)
    singles = [table.query(a, seed_mode="sample", rng=rng) for a in actions]
    np.testing.assert_array_equal(sampled["seed"], [s["seed"] for s in singles])
    np.testing.assert_array_equal(sampled["flops"], [s["flops"] for s in singles])
    assert set(sampled["seed"][sampled["arch_index"] >= 32]) == {0}
    assert set(sampled["seed"][sampled["arch_index"] < 32]) == {0, 1}


@pytest.mark.parametrize("actions", [np.array([[0, 8]]), np.array([[-1, 0]]), np.array([0, 1]),
                                     np.array([[0.0, 1.0]]), np.zeros((3, 3), dtype=int)])
def test_batch_query_rejects_actions_outside_the_space(table, actions):
    with pytest.raises(InvalidArchitectureError, match="0 to 7|shape"):
        table.query_batch(actions)


@pytest.mark.parametrize("arch", [64, -1, "|conv3x3~0|", [0, 8], [1, 2, 3], 2.5, True])
def test_query_rejects_cells_outside_the_space(table, arch):
    with pytest.raises(InvalidArchitectureError):
        table.query(arch)


def test_best_under_each_reward(table):
    mean = table.df.groupby("arch_index")[["validation_accuracy", "cell_parameters", "flops"]].mean()
    best_val = table.best("val")
    assert best_val["arch_index"] == mean["validation_accuracy"].idxmax()
    assert best_val["reward"] == best_val["validation_accuracy"]

    best_param = table.best("param")
    feasible = mean[mean["cell_parameters"] < 150_000]
    assert best_param["arch_index"] == feasible["validation_accuracy"].idxmax()
    assert best_param["arch_index"] != best_val["arch_index"]
    assert table.best(Reward("param", "cell_parameters", 150_000)) == best_param

    by_flops = table.best("param", budget_metric="flops", budget=50e6)
    assert by_flops["arch_index"] == mean[mean["flops"] < 50e6]["validation_accuracy"].idxmax()
    # the whole network's ~25.7M-parameter classifier dwarfs the cells
    assert table.best("param", budget_scope="network", budget=27e6) == best_val
    with pytest.raises(ValueError, match="no cell .* has cell_parameters < 10"):
        table.best("param", budget=10)


def test_reward_matches_the_paper():
    reward = Reward.from_keywords("param")
    assert (reward.kind, reward.budget_metric, reward.budget) == ("param", "cell_parameters", 150_000)
    assert reward(97.0, 149_999) == 97.0
    assert reward(97.0, 150_000) == R_PARAM_PENALTY == -100.0
    np.testing.assert_array_equal(reward(np.array([97.0, 98.0]), np.array([10, 200_000])), [97.0, -100.0])
    assert Reward.from_keywords("val")(97.0, 10**9) == 97.0
    assert Reward.from_keywords(budget_scope="network", budget=1e7).budget_metric == "trainable_parameters"


@pytest.mark.parametrize("kwargs, message", [
    ({"reward": "acc"}, "reward='acc'.*'val', 'param'"),
    ({"budget_scope": "model"}, "budget_scope='model'.*'cells', 'network'"),
    ({"budget_metric": "params"}, "budget_metric='params'.*'flops'"),
    ({"budget_scope": "cells", "budget_metric": "flops", "budget": 1}, "only one of them"),
    ({"budget_metric": "flops"}, "'flops' has no default budget"),
    ({"budget": -5}, "budget=-5"),
])
def test_reward_keywords_fail_with_the_allowed_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Reward.from_keywords(**kwargs)


def test_missing_table_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        RewardTable(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_table(tmp_path / "nope.csv")


def test_incomplete_table_names_the_missing_cells(tmp_path):
    path = write_variant(tmp_path, lambda df: df[df["arch_index"] < 2])
    with pytest.raises(RewardTableError) as error:
        RewardTable(path)
    message = str(error.value)
    assert str(path) in message and "covers 2 of the 64" in message
    assert "62 missing (indices 2-63" in message and SmallCell.from_index(2).to_string() in message


@pytest.mark.parametrize("edit, message", [
    (lambda df: df.drop(columns=["flops", "seed"]), "lacks the columns seed, flops"),
    (lambda df: df.assign(validation_accuracy=df["validation_accuracy"].astype(object).where(df.index != 3, "n/a")),
     "validation_accuracy is not numeric on line\\(s\\) 5"),
    (lambda df: df.assign(test_accuracy=df["test_accuracy"].where(df.index != 0, 101.0)), "percentage"),
    (lambda df: df.assign(flops=df["flops"].where(df.index != 0, -1)), "flops must hold integers"),
    (lambda df: df.assign(arch=df["arch"].where(df.index != 0, "|conv9x9~0|+|identity~1|")), "not an A_small cell"),
    (lambda df: df.assign(arch_index=df["arch_index"].where(df.index != 0, 5)), "arch_index disagrees"),
    (lambda df: pd.concat([df, df.iloc[:1]]), "repeats on line"),
    (lambda df: df.assign(cell_parameters=df["cell_parameters"].where(df.index != 64, 1)), "differs between the seeds"),
    (lambda df: df.assign(diverged=df["diverged"].astype(object).where(df.index != 0, "maybe")), "diverged"),
    (lambda df: df.iloc[:0], "no rows"),
    (lambda df: df.iloc[:99], "different numbers of training seeds"),  # cut at a row boundary
    (lambda df: df.assign(device=df["device"].where(df.index != 127, np.nan),
                          precision=df["precision"].where(df.index != 127, np.nan)),
     "device is empty on line\\(s\\) 129"),
    (lambda df: df.assign(flops=df["flops"].astype(float).where(df.index != 0, 1e30)),
     "flops must hold integers from 0 to 2\\*\\*53"),
    (lambda df: df.assign(flops=df["flops"].astype(float).where(df.index != 0, np.inf)),
     "flops must be finite"),
    (lambda df: df.assign(training_time=df["training_time"].where(df.index != 0, np.inf)),
     "training_time must be finite"),
])
def test_malformed_table_names_the_file_and_the_fault(tmp_path, edit, message):
    path = write_variant(tmp_path, edit)
    with pytest.raises(RewardTableError, match=message) as error:
        RewardTable(path)
    assert str(path) in str(error.value)


def test_unreadable_csv_and_sidecar_name_the_file(tmp_path):
    path = tmp_path / "table.csv"
    path.write_bytes(b"")
    with pytest.raises(RewardTableError, match="table.csv is not a readable CSV"):
        RewardTable(path)
    shutil.copy(FIXTURE, path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(RewardTableError, match="table.json of reward table .*table.csv is not JSON"):
        RewardTable(path)


def test_a_table_without_its_sidecar_or_with_a_sidecar_lacking_a_key_is_refused(tmp_path):
    path = write_variant(tmp_path, lambda df: df)
    path.with_suffix(".json").unlink()
    with pytest.raises(RewardTableError, match="table.csv has no sidecar .*table.json"):
        RewardTable(path)
    meta = json.loads(FIXTURE.with_suffix(".json").read_text())
    del meta["dataset"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(RewardTableError, match="table.json of reward table .*table.csv lacks dataset"):
        RewardTable(path)


def test_sidecar_is_read(table):
    assert table.meta["dataset"] == "mnist" and table.meta["protocol"]["name"] == "fast"


def test_unmeasured_latency_is_allowed_but_not_as_a_budget(tmp_path):
    table = RewardTable(write_variant(tmp_path, lambda df: df.assign(latency_ms=np.nan)))
    assert table.query(0)["latency_ms"] is None
    with pytest.raises(RewardTableError, match="no latency_ms for cells 0-63"):
        table.best("param", budget_metric="latency_ms", budget=10)


def test_load_table_shares_a_table_until_the_file_changes(tmp_path):
    path = write_variant(tmp_path, lambda df: df)
    first = load_table(path)
    assert load_table(path) is first
    write_variant(tmp_path, lambda df: df.assign(training_time=df["training_time"] + 1000))
    assert load_table(path).query(0)["training_time"] == first.query(0)["training_time"] + 1000
    with pytest.raises(ValueError, match="read-only"):
        first.mean["validation_accuracy"][0] = 0.0


def test_table_path_finds_shipped_tables_and_lists_them_otherwise():
    path = table_path("mnist", "fast")
    assert path.name == "small_mnist_fast.csv" and path.parent.name == "reward_tables" and path.is_file()
    with pytest.raises(FileNotFoundError, match="dataset='cifar10'.*shipped tables: .*small_mnist_fast.csv"):
        table_path("cifar10", "fast")


def test_a_table_built_into_the_user_folder_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    folder = tmp_path / "nas_env" / "reward_tables"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE, folder / "small_mnist_paper.csv")
    assert table_path("mnist", "paper") == folder / "small_mnist_paper.csv"
    assert table_path("mnist", "fast").parent.name == "reward_tables"  # shipped ones come first
    assert table_path("mnist", "fast").parent != folder


def test_the_wheel_ships_the_tables(tmp_path):
    """Build a wheel from a copy of the sources (the checkout stays clean) and list its files."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.tmp", ".*")
    for package in ("nas_env", "agents", "reward_tables"):
        if (REPO / package).exists():
            shutil.copytree(REPO / package, source / package, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), "-q"],
        check=True, cwd=tmp_path, capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("nas_env-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for suffix in (".csv", ".json"):
        assert any(n.startswith("reward_tables/") and n.endswith(suffix) for n in names), names
    assert "reward_tables/__init__.py" in names and "nas_env/benchmark.py" in names
    assert "nas_env/envs/cell_env.py" in names


def test_a_sampling_table_evaluator_needs_no_rng(table):
    from nas_env.evaluators import TableEvaluator

    evaluator = TableEvaluator(table, "sample")
    result = evaluator.evaluate(SmallCell(1, 5))
    assert result["seed"] in (0, 1) and result["num_seeds"] == 2
