"""The SQLite evaluation cache: lookups, concurrent writers, interrupted evaluations."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas_env.cache import EvaluationCache, protocol_hash
from nas_env.spaces import LargeCell
from nas_env.training import PROTOCOLS, Protocol

CHEAP = PROTOCOLS["cheap"]
REPO = Path(__file__).resolve().parents[1]


def fake_result(cell: LargeCell, seed: int = 0, accuracy: float = 90.0) -> dict:
    return {"arch": cell.to_string(), "arch_key": cell.key, "arch_index": None, "seed": seed,
            "num_seeds": 1, "validation_accuracy": accuracy, "test_accuracy": accuracy - 1,
            "val_curve": [[1.0, accuracy]], "training_time": 12.5, "evaluation_time": 2.0,
            "trainable_parameters": 10,
            "cell_parameters": 5, "flops": 20, "latency_ms": float("nan"), "diverged": False,
            "failure": None, "source": "training", "dataset": "mnist", "protocol": "cheap",
            "fidelity": 1.0, "device": "cpu", "precision": "fp32", "worker": "host:123",
            "wait_seconds": 0.5, "run_seconds": 13.0}


def cell_number(i: int) -> LargeCell:
    """A distinct cell (by canonical key) for each ``i`` below 8 * 8 * 8."""
    return LargeCell([(0, 0, i % 8, 0), (1, 0, (i // 8) % 8, 0), (2, 0, (i // 64) % 8, 0)])


def test_a_stored_result_comes_back_marked_as_cached(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = cell_number(3)
    assert cache.get("large", "mnist", CHEAP, cell.key, 0) is None
    assert cache.put("large", CHEAP, fake_result(cell))
    got = cache.get("large", "mnist", CHEAP, cell.key, 0)
    assert got == {**fake_result(cell), "source": "cache", "latency_ms": got["latency_ms"]}
    assert got["latency_ms"] != got["latency_ms"]  # NaN survives the round trip


def test_a_row_stored_before_the_worker_keys_reads_as_not_trained_by_a_worker(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = cell_number(4)
    old = {k: v for k, v in fake_result(cell).items()
           if k not in ("worker", "wait_seconds", "run_seconds")}
    cache.put("large", CHEAP, old)
    got = cache.get("large", "mnist", CHEAP, cell.key, 0)
    assert (got["worker"], got["wait_seconds"], got["run_seconds"]) == (None, 0.0, 0.0)


def test_the_key_is_canonical_and_includes_seed_dataset_and_protocol(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = LargeCell([(0, 0, "conv3x3", "identity")])
    swapped = LargeCell([(0, 0, "identity", "conv3x3")])
    cache.put("large", CHEAP, fake_result(cell))
    assert cache.get("large", "mnist", CHEAP, swapped.key, 0) is not None
    assert cache.get("large", "mnist", CHEAP, cell.key, 1) is None
    assert cache.get("large", "fashion_mnist", CHEAP, cell.key, 0) is None
    assert cache.get("small", "mnist", CHEAP, cell.key, 0) is None
    # Same name, other settings: another protocol, so another row.
    renamed = Protocol(**{**CHEAP.as_dict(), "train_images": 100})
    assert protocol_hash(renamed) != protocol_hash(CHEAP)
    assert cache.get("large", "mnist", renamed, cell.key, 0) is None


def test_the_first_result_for_a_key_wins(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = cell_number(1)
    assert cache.put("large", CHEAP, fake_result(cell, accuracy=90.0))
    assert not cache.put("large", CHEAP, fake_result(cell, accuracy=50.0))
    assert cache.get("large", "mnist", CHEAP, cell.key, 0)["validation_accuracy"] == 90.0
    assert len(cache) == 1


def _write_rows(path: str, start: int, count: int) -> None:
    cache = EvaluationCache(path)
    for i in range(start, start + count):
        cache.put("large", CHEAP, fake_result(cell_number(i)))
    cache.close()


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    EvaluationCache(path).close()
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_write_rows, args=(path, start, 150)) for start in (0, 150)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    cache = EvaluationCache(path)
    assert len(cache) == 300
    assert {row["arch_key"] for row in cache.rows()} == {cell_number(i).key for i in range(300)}


KILLED_EVALUATION = """
import sys
from nas_env.evaluators import LiveEvaluator
from nas_env.spaces import LargeCell
from nas_env.training import Protocol

slow = Protocol("slow", epochs=200, lr=1e-3, schedule="constant", batch_size=8,
                checkpoints_per_epoch=1, filters=(4, 8), fc_units=16, precision="fp32")
evaluator = LiveEvaluator("large", "mnist", slow, data_root=sys.argv[1], cache=sys.argv[2])
evaluator.evaluate(LargeCell([(0, 0, "conv3x3", "identity")]))
"""


def test_a_killed_evaluation_leaves_no_row(tmp_path, synthetic_data_root):
    path = tmp_path / "c.sqlite"
    script = tmp_path / "evaluate.py"
    script.write_text(KILLED_EVALUATION)
    proc = subprocess.Popen([sys.executable, str(script), str(synthetic_data_root), str(path)],
                            cwd=REPO)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:  # the cache opens before training
        time.sleep(0.2)
    time.sleep(3)  # well into the 200 epochs
    assert proc.poll() is None, "the evaluation finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = EvaluationCache(path)
    assert len(cache) == 0
    # The file is intact: another writer can use it at once.
    cache.put("large", CHEAP, fake_result(cell_number(0)))
    assert len(cache) == 1


def test_default_path_follows_xdg_cache_home(tmp_path, monkeypatch):
    from nas_env.cache import default_cache_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "nas_env" / "evaluations.sqlite"


@pytest.mark.parametrize("filters", [(8,), (0, 8)])
def test_a_protocol_with_bad_filters_is_refused(filters):
    with pytest.raises(ValueError, match="filters"):
        Protocol(**{**CHEAP.as_dict(), "filters": filters})
