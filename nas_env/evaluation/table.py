"""Results looked up in an A_small reward table, at full or at a lower fidelity."""

from __future__ import annotations

import math

import numpy as np

from ..keywords import check_seed_mode
from ..results import EvalResult
from ..spaces import SmallCell
from ..tables.reward_table import RewardTable
from .interface import SIZE_METRICS, Evaluator


class TableEvaluator(Evaluator):
    """Results looked up in an A_small reward table.

    :param table: the table.
    :param seed_mode: ``"mean"`` over the table's training seeds or ``"sample"``: one seed's row,
        drawn with the ``rng`` passed to :meth:`evaluate`.
    :param fidelity: the fraction of the protocol's training to report: the validation accuracy at
        the matching checkpoint of the recorded curve (``table.checkpoints`` divided by the
        protocol's epochs, e.g. 0.25, 0.5, 0.75 or 1.0 for the ``fast`` table), charged that
        fraction of the training time. The test accuracy stays the final one. A table rewarded by
        its ``score`` (a late-loss protocol's) records no score per checkpoint, so it serves
        fidelity 1 only.

    Its :attr:`reward_key` is the table's (:attr:`RewardTable.reward_key
    <nas_env.tables.reward_table.RewardTable.reward_key>`).
    """

    space = "small"

    def __init__(self, table: RewardTable, seed_mode: str = "mean", fidelity: float = 1.0) -> None:
        self.table = table
        self.seed_mode = check_seed_mode(seed_mode)
        meta = table.meta or {}
        self.dataset = meta.get("dataset")
        self.protocol = (meta.get("protocol") or {}).get("name")
        self.reward_key = table.reward_key
        if fidelity < 1.0 - 0.01 and self.reward_key != "validation_accuracy":
            raise ValueError(f"fidelity={fidelity!r}: {table.path} is rewarded by its "
                             f"{self.reward_key}, recorded only for the whole run; allowed: 1.0")
        epochs = int((meta.get("protocol") or {}).get("epochs") or math.ceil(table.checkpoints[-1]))
        fractions = [c / epochs for c in table.checkpoints]
        matches = [c for c, f in zip(table.checkpoints, fractions) if abs(f - fidelity) < 0.01]
        if not matches:
            raise ValueError(
                f"fidelity={fidelity!r} is not a checkpoint of {table.path}; allowed: "
                + ", ".join(f"{round(f, 2):g}" for f in fractions)
            )
        self.fidelity = float(fidelity)
        self._checkpoint = matches[0]
        self._full = fidelity >= 1.0 - 0.01

    def evaluate(self, cell: SmallCell, rng: np.random.Generator | None = None) -> EvalResult:
        result = self.table.lookup(cell.index, self.seed_mode, rng)
        if not self._full:
            result["validation_accuracy"] = dict(result["val_curve"])[self._checkpoint]
            result["training_time"] *= self.fidelity
            result["fidelity"] = self.fidelity
        return result

    def size(self, cell: SmallCell) -> dict:
        record = self.table.lookup(cell.index)
        return {k: record[k] for k in SIZE_METRICS}

    def best(self, reward) -> dict:
        return self.table.best(reward)

    def check_metric(self, metric: str) -> None:
        self.table.check_metric(metric)
