"""What the tests of batch evaluation share: a tiny deterministic protocol, three distinct cells,
a live evaluator of them on any backend, the figures every backend must reproduce, a count of
the trainings, and the fault injection that kills training processes (``fault_injection/``)."""

from __future__ import annotations

import os
from pathlib import Path

import nas_env.training
from nas_env.evaluators import LiveEvaluator
from nas_env.spaces import LargeCell
from nas_env.training import Protocol

FAULTS = str(Path(__file__).resolve().parent / "fault_injection")
"""Put on a worker's PYTHONPATH with KILL_VARIABLE set, it kills training runs (see there)."""
KILL_VARIABLE = "NAS_ENV_TEST_KILL_WORKER"


def inject_faults(monkeypatch, target: str) -> None:
    """Make the training processes this test starts die as its ``target`` says."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [FAULTS,
                                                                   os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(KILL_VARIABLE, target)


TINY = Protocol("tiny", epochs=2, lr=1e-2, schedule="onecycle", batch_size=32,
                checkpoints_per_epoch=1, filters=(4, 8), fc_units=32, precision="fp32")
CELLS = [
    LargeCell([(0, 0, "conv3x3", "max_pool2x2"), (1, 0, "identity", "sep_conv3x3")]),
    LargeCell([(0, 0, "conv5x5", "identity"), (0, 1, "avg_pool2x2", "conv3x3")]),
    LargeCell([(0, 0, "sep_conv3x3", "sep_conv3x3"), (1, 1, "conv1x3_3x1", "max_pool2x2")]),
]
# CELLS[0] with its first block's two (input, op) pairs swapped: another string, the same cell.
SWAPPED = LargeCell([(0, 0, "max_pool2x2", "conv3x3"), (1, 0, "identity", "sep_conv3x3")])
MEASURED = ("validation_accuracy", "test_accuracy", "val_curve", "trainable_parameters")


def live(root, cache, backend="inline", workers=None) -> LiveEvaluator:
    """A live A_large evaluator of :data:`TINY` on one torch thread, on ``backend``."""
    return LiveEvaluator("large", protocol=TINY, data_root=root, cache=cache, threads=1,
                         backend=backend, workers=workers)


def measured(result: dict) -> dict:
    """The figures of ``result`` that every backend must reproduce exactly."""
    return {k: result[k] for k in MEASURED}


def count_trainings(monkeypatch) -> list:
    """The keys of the cells trained in this process from now on, in order."""
    calls = []
    original = nas_env.training.train_child

    def counted(cell, *args, **kwargs):
        calls.append(cell.key)
        return original(cell, *args, **kwargs)
    monkeypatch.setattr(nas_env.training, "train_child", counted)
    return calls
