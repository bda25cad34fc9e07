"""A live search's cache becomes a reward table that the table env serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nas_env  # noqa: F401
from nas_env.benchmark import TABLE_COLUMNS, RewardTable
from nas_env.cache import EvaluationCache
from nas_env.spaces import SmallCell
from nas_env.table_builder import export_cache_table
from nas_env.identity import run_identity
from nas_env.training import PROTOCOLS, Protocol

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "small_fixture.csv"
DATA = {"sha256": "a" * 64, "train_count": 60_000, "test_count": 10_000, "split_seed": 0,
        "validation_fraction": 0.1}


@pytest.fixture
def filled_cache(tmp_path) -> EvaluationCache:
    """The fixture table's 128 (cell, seed) results, stored as live results of the fast protocol."""
    table = RewardTable(FIXTURE)
    cache = EvaluationCache(tmp_path / "cache.sqlite")
    for cell in SmallCell.all():
        for j in range(int(table.num_seeds[cell.index])):
            record = dict(table._seed_records[cell.index][j])
            record.update(source="training", val_curve=[list(p) for p in record["val_curve"]])
            cache.put(run_identity(space="small", arch_key=cell.key, dataset="mnist", data=DATA,
                                   split_sizes=[54_000, 6_000, 10_000], protocol=PROTOCOLS["fast"],
                                   seed=record["seed"], precision=record["precision"],
                                   device_type=record["device"]), record)
    return cache


def test_an_exported_cache_is_a_table_the_env_serves(filled_cache, tmp_path):
    path = export_cache_table(filled_cache, "mnist", "fast", tmp_path / "tables")
    assert path.name == "small_mnist_fast.csv"
    exported, original = RewardTable(path), RewardTable(FIXTURE)
    assert tuple(exported.df.columns) == TABLE_COLUMNS
    for cell in SmallCell.all():
        assert exported.query(cell) == original.query(cell)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert Protocol.from_dict(sidecar["protocol"]) == PROTOCOLS["fast"]
    assert sidecar["dataset"] == "mnist" and "evaluation cache" in sidecar["source"]
    env = gym.make("NASCell-small-v0", table_path=path)
    env.reset(seed=0)
    assert env.step([1, 5])[1] == original.query([1, 5])["validation_accuracy"]


def test_the_script_exports_and_refuses_an_empty_selection(filled_cache, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "experiments/export_cache.py", "--cache-path",
                           str(filled_cache.path), "--protocol", "fast", "--out-dir", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "128 rows" in done.stdout and (out / "small_mnist_fast.csv").is_file()
    with pytest.raises(ValueError, match="holds no small results on fashion_mnist"):
        export_cache_table(filled_cache, "fashion_mnist", "fast", out)


def test_a_large_export_keeps_every_row(tmp_path, synthetic_data_root):
    from nas_env.evaluators import LiveEvaluator
    from nas_env.spaces import LargeCell

    tiny = Protocol("tiny", epochs=1, lr=1e-2, schedule="onecycle", batch_size=64,
                    checkpoints_per_epoch=1, filters=(4, 8), fc_units=16, precision="fp32")
    evaluator = LiveEvaluator("large", "mnist", tiny, data_root=synthetic_data_root,
                              cache=tmp_path / "c.sqlite", train_seeds=[0, 1])
    cell = LargeCell([(0, 0, "conv3x3", "identity")])
    result = evaluator.evaluate(cell)
    path = export_cache_table(evaluator.cache, "mnist", "tiny", tmp_path, space="large")
    import pandas as pd

    rows = pd.read_csv(path)
    assert rows["arch"].tolist() == [cell.to_string()] * 2 and rows["seed"].tolist() == [0, 1]
    assert rows["arch_index"].isna().all()
    assert np.mean(rows["validation_accuracy"]) == pytest.approx(result["validation_accuracy"])
