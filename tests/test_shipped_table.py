"""The shipped A_small reward tables (MNIST and Fashion-MNIST, fast protocol): schema, coverage,
sizes and protocol.

These tests read the tables the package ships (``reward_tables/small_{dataset}_fast.csv``), not
the fixture: they check what a user of ``gym.make("NASCell-small-v0", dataset=...)`` relies on,
whatever the accuracies turn out to be. Every test runs on each table's rows as they are; only the
coverage test needs a finished build.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nas_env.benchmark import TABLE_COLUMNS, RewardTable, table_path
from nas_env.child_net import network_size
from nas_env.spaces import SmallCell
from nas_env.table_builder import protocol_record
from nas_env.training import Protocol

DATASETS = ("mnist", "fashion_mnist")


@pytest.fixture(scope="module", params=DATASETS)
def dataset(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def shipped(dataset):
    return table_path(dataset, "fast")


@pytest.fixture(scope="module")
def rows(shipped) -> pd.DataFrame:
    return pd.read_csv(shipped)


def test_every_cell_of_the_space_is_covered_once_per_seed(rows, shipped):
    assert list(rows.columns) == list(TABLE_COLUMNS)
    all_cells = {cell.to_string() for cell in SmallCell.all()}
    assert len(all_cells) == 64
    assert set(rows["arch"]) == all_cells
    assert not rows.duplicated(["arch", "seed"]).any()
    # Two training seeds, 0 and 1, for every cell: seed noise is the size of the gaps between
    # the best cells, so one seed could not say which is best.
    assert len(rows) == 2 * 64
    for seed in (0, 1):
        assert set(rows.loc[rows["seed"] == seed, "arch"]) == all_cells
    table = RewardTable(shipped)  # the checked loader accepts it
    assert (table.num_seeds == 2).all()


def test_accuracies_are_percentages_and_no_run_diverged(rows):
    for col in ("validation_accuracy", "test_accuracy"):
        assert rows[col].between(0.0, 100.0).all(), col
    # Every cell learns MNIST far beyond chance in one epoch (10% is chance).
    assert (rows["validation_accuracy"] > 50.0).all()
    assert not rows["diverged"].astype(str).str.lower().eq("true").any()
    assert (rows["training_time"] > 0).all()


def test_sizes_match_the_child_network_builder_exactly(rows):
    per_cell = rows.drop_duplicates("arch").set_index("arch")
    assert len(per_cell) > 0
    for arch, row in per_cell.iterrows():
        cell = SmallCell.from_string(arch)
        expected = network_size(cell)
        for col in ("trainable_parameters", "cell_parameters", "flops"):
            assert int(row[col]) == expected[col] > 0, (cell.to_string(), col)
    # The size of a network does not depend on the training seed.
    assert (rows.groupby("arch")[["trainable_parameters", "cell_parameters", "flops"]]
            .nunique() == 1).all().all()


def test_sidecar_records_the_builders_fast_protocol_on_its_dataset(shipped, dataset):
    sidecar = json.loads(shipped.with_suffix(".json").read_text())
    expected = protocol_record(dataset, "fast", sidecar["device"], sidecar["precision"])
    for key in ("space", "dataset", "split_seed", "validation_fraction"):
        assert sidecar[key] == expected[key], key
    # Fields added to Protocol since the table was built read as their defaults.
    assert Protocol.from_dict(sidecar["protocol"]) == Protocol.from_dict(expected["protocol"])
    assert sidecar["dataset"] == dataset
    assert sidecar["protocol"]["name"] == "fast"


def test_rows_in_the_table_agree_with_its_val_curve(rows):
    # The final checkpoint of each run's validation curve is its reported validation accuracy.
    for _, row in rows.iterrows():
        curve = json.loads(row["val_curve"])
        assert curve[-1][0] == pytest.approx(1.0)
        assert curve[-1][1] == pytest.approx(row["validation_accuracy"])
        assert np.all(np.diff([epoch for epoch, _ in curve]) > 0)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_the_cheap_table_covers_every_cell_under_the_cheap_protocol(dataset):
    """reward_tables/small_<dataset>_cheap.csv: the cheap protocol on all 64 cells, exported from
    the evaluation cache (experiments/export_cache.py), served by the table env."""
    import gymnasium as gym

    import nas_env  # noqa: F401
    from nas_env.training import PROTOCOLS

    table = RewardTable(table_path(dataset, "cheap"))
    assert len(table.df) == 64 and set(table.num_seeds.tolist()) == {1}
    assert Protocol.from_dict(table.meta["protocol"]) == PROTOCOLS["cheap"]
    assert table.meta["dataset"] == dataset and table.meta["precision"] == "fp32"
    for cell in (SmallCell("conv3x3", "max_pool2x2"), SmallCell("max_pool2x2", "max_pool2x2")):
        result = table.query(cell)
        assert {k: result[k] for k in ("trainable_parameters", "cell_parameters", "flops")} \
            == network_size(cell)
    env = gym.make("NASCell-small-v0", dataset=dataset, protocol="cheap")
    env.reset(seed=0)
    info = env.step([1, 5])[4]
    assert info["protocol"] == "cheap" and info["dataset"] == dataset


@pytest.mark.parametrize("protocol", ["fast", "ref32"])
def test_the_a_large_reference_tables_hold_listed_cells_in_their_sidecars_precision(protocol):
    """reward_tables/large_fashion_mnist_<protocol>.csv, a reference set still being built: every
    row is a listed cell under a seed of 0 or 1, once, trained as its sidecar says, with the
    paper-size network's sizes."""
    from pathlib import Path

    from nas_env.spaces import parse_architecture

    folder = Path(__file__).resolve().parents[1] / "reward_tables"
    rows = pd.read_csv(folder / f"large_fashion_mnist_{protocol}.csv")
    meta = json.loads((folder / f"large_fashion_mnist_{protocol}.json").read_text())
    listed = set(pd.read_csv(folder / "large_reference_cells.csv")["arch"])
    assert len(rows) > 0 and set(rows["arch"]) <= listed
    assert not rows.duplicated(["arch", "seed"]).any() and set(rows["seed"]) <= {0, 1}
    assert meta["space"] == "large" and meta["dataset"] == "fashion_mnist"
    assert meta["protocol"]["name"] == protocol and meta["precision"] == meta["protocol"]["precision"] == "bf16"
    # Rows come from CPUs and from a GPU (merge_table.py); each names its device.
    assert (rows["precision"] == "bf16").all() and set(rows["device"]) <= {"cpu", "cuda"}
    assert rows["validation_accuracy"].between(10, 100).all()
    for _, row in rows.iterrows():
        sizes = network_size(parse_architecture(row["arch"]))
        assert row["trainable_parameters"] == sizes["trainable_parameters"]
        assert row["cell_parameters"] == sizes["cell_parameters"]
