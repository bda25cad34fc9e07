"""What the tests of ``experiments/exp3_study.py`` share: the protocol of a tiny study (which the
``study`` fixture of ``conftest.py`` runs) and a guard that fails where a function runs that
should not."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = json.dumps({"name": "tiny", "epochs": 1, "lr": 1e-2, "schedule": "onecycle",
                   "batch_size": 32, "checkpoints_per_epoch": 1, "filters": [4, 8],
                   "fc_units": 32, "precision": "fp32"})
"""A protocol of one epoch on 4 and 8 filters, for tests that train on the synthetic data."""


def forbid(monkeypatch, module, name: str) -> None:
    """Make ``module.name`` fail the test if it is called."""
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} was called where everything should come from the cache")
    monkeypatch.setattr(module, name, fail)
