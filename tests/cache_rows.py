"""Rows for the cache's tests: a result of each field a live evaluator stores, the identity such
an evaluator on the synthetic data would store it under, distinct cells by number, and a writer of
several rows (as a separate process runs it)."""

from __future__ import annotations

from nas_env.cache import EvaluationCache
from nas_env.identity import run_identity
from nas_env.spaces import LargeCell
from nas_env.training import PROTOCOLS, Protocol

CHEAP = PROTOCOLS["cheap"]


def fake_result(cell: LargeCell, seed: int = 0, accuracy: float = 90.0) -> dict:
    return {"arch": cell.to_string(), "arch_key": cell.key, "arch_index": None, "seed": seed,
            "num_seeds": 1, "validation_accuracy": accuracy, "test_accuracy": accuracy - 1,
            "val_curve": [[1.0, accuracy]], "train_loss_sum": 40.0, "loss_curve": [[1.0, 0.4]],
            "score": None, "proxy_scores": None,
            "training_time": 12.5, "evaluation_time": 2.0,
            "trainable_parameters": 10,
            "cell_parameters": 5, "flops": 20, "latency_ms": float("nan"), "diverged": False,
            "failure": None, "source": "training", "dataset": "mnist", "protocol": "cheap",
            "fidelity": 1.0, "device": "cpu", "precision": "fp32", "worker": "host:123",
            "hardware": "AMD EPYC (avx2, avx512f, avx512_bf16)", "threads": 1,
            "wait_seconds": 0.5, "run_seconds": 13.0}


DATA = {"sha256": "a" * 64, "train_count": 300, "test_count": 100, "split_seed": 0,
        "validation_fraction": 0.1}


def identity(cell: LargeCell, seed: int = 0, protocol: Protocol = CHEAP, **changes) -> dict:
    """The identity a live evaluator on the synthetic data would store ``cell`` under."""
    record = run_identity(space="large", arch_key=cell.key, dataset="mnist", data=DATA,
                          split_sizes=[270, 30, 100], protocol=protocol, seed=seed,
                          precision="fp32", device_type="cpu")
    return {**record, **changes}


def cell_number(i: int) -> LargeCell:
    """A distinct cell (by canonical key) for each ``i`` below 8 * 8 * 8."""
    return LargeCell([(0, 0, i % 8, 0), (1, 0, (i // 8) % 8, 0), (2, 0, (i // 64) % 8, 0)])


def write_rows(path: str, start: int, count: int) -> None:
    """Store the rows of cells ``start`` to ``start + count - 1`` in the cache at ``path``."""
    cache = EvaluationCache(path)
    for i in range(start, start + count):
        cache.put(identity(cell_number(i)), fake_result(cell_number(i)))
    cache.close()
