"""The interface every evaluator answers: an architecture in, an
:class:`~nas_env.results.EvalResult` out, and its sizes without evaluating it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..results import EvalResult
from ..spaces import LargeCell, SmallCell

if TYPE_CHECKING:
    from ..tables.reward_table import RewardTable

SIZE_METRICS = ("trainable_parameters", "cell_parameters", "flops")
"""The results an architecture determines before any training (the paper-size network's)."""
SPACES = ("small", "large")


def space_of(cell: SmallCell | LargeCell) -> str:
    """``"small"`` for an A_small cell, ``"large"`` for an A_large one."""
    return "small" if isinstance(cell, SmallCell) else "large"


class Evaluator(ABC):
    """Evaluates architectures of one search space; the interface the envs use.

    :attr space: ``"small"`` or ``"large"``.
    :attr dataset: the dataset the results are on.
    :attr protocol: the training protocol's name.
    :attr table: the reward table behind the results, or ``None`` when there is none.
    :attr reward_key: the result key the envs' reward is computed from: ``"validation_accuracy"``,
        or ``"score"`` for a training-free evaluator and for a live one whose protocol is read by
        its late training loss.
    """

    space: str
    dataset: str | None
    protocol: str | None
    table: RewardTable | None = None
    reward_key: str = "validation_accuracy"
    """The result key an env's reward is computed from."""

    @abstractmethod
    def evaluate(self, cell: SmallCell | LargeCell,
                 rng: np.random.Generator | None = None) -> EvalResult:
        """The result of ``cell``; ``rng`` picks a training seed where the seed mode samples."""

    @abstractmethod
    def size(self, cell: SmallCell | LargeCell) -> dict:
        """``trainable_parameters``, ``cell_parameters`` and ``flops`` of ``cell``, without
        evaluating it."""

    def evaluate_batch(self, cells: Sequence[SmallCell | LargeCell],
                       rngs: Sequence[np.random.Generator | None] | None = None) -> list[EvalResult]:
        """The results of ``cells``, in order; ``rngs[i]`` is ``evaluate``'s ``rng`` for cell
        ``i``. This implementation evaluates one after another; a live evaluator trains the
        batch's distinct uncached cells through its backend."""
        rngs = list(rngs) if rngs is not None else [None] * len(cells)
        return [self.evaluate(cell, rng) for cell, rng in zip(cells, rngs)]

    def best(self, reward) -> dict | None:
        """The best cell under ``reward`` (a :class:`~nas_env.rewards.Reward`) where the evaluator
        knows it (a table), else ``None``."""
        return None

    def check_metric(self, metric: str) -> None:
        """Raise if results will not hold ``metric`` (a budget metric)."""

    def close(self) -> None:
        """Release what the evaluator holds (files, data)."""
