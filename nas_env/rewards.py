"""A searcher's reward and its budget rules, and the best cell a search is judged against.

:class:`Reward` is the searcher's reward: ``"val"`` (validation accuracy in percent) or the
paper's budgeted ``"param"`` (``-100`` when the budget metric is at least the budget, else the
validation accuracy). The envs and :meth:`~nas_env.tables.reward_table.RewardTable.best` share
it::

    from nas_env.rewards import Reward

    Reward.from_keywords("param")                          # < 150,000 parameters in the cells
    Reward.from_keywords("param", budget_metric="flops", budget=50e6)

:class:`Optimum` is a table's best cell under one reward with the cells that tie with it within
the table's seed noise (:meth:`~nas_env.tables.reward_table.RewardTable.optimum`). Test accuracy
is reported, never rewarded. Nothing here needs torch or a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .keywords import not_allowed

REWARD_TOLERANCE = 1e-4
"""How far two rewards may differ and still be equal: SB3 stores rewards as float32 (about 1e-5
resolution near 100). The one tolerance the project compares rewards with."""
REWARDS = ("val", "param")
BUDGET_SCOPES = {"cells": "cell_parameters", "network": "trainable_parameters"}
BUDGET_METRICS = ("cell_parameters", "trainable_parameters", "flops", "latency_ms", "training_time")
DEFAULT_BUDGETS = {"cell_parameters": 150_000}
"""The paper's ``n``: 150,000 parameters in the two cells. Other metrics have no default."""
R_PARAM_PENALTY = -100.0


@dataclass(frozen=True)
class Reward:
    """A searcher's reward computed from a table's results.

    :param kind: ``"val"``: the validation accuracy in percent; ``"param"``: the paper's r_param,
        :data:`R_PARAM_PENALTY` (-100) when ``budget_metric`` is at least ``budget``, else the
        validation accuracy.
    :param budget_metric: the table column the budget limits (one of :data:`BUDGET_METRICS`).
    :param budget: the budget ``n``; a cell meets it when its metric is strictly below it.

    Build one from the envs' keywords with :meth:`from_keywords`.
    """

    kind: str = "val"
    budget_metric: str = "cell_parameters"
    budget: float = DEFAULT_BUDGETS["cell_parameters"]

    def __post_init__(self) -> None:
        if self.kind not in REWARDS:
            raise not_allowed("reward", self.kind, REWARDS)
        if self.budget_metric not in BUDGET_METRICS:
            raise not_allowed("budget_metric", self.budget_metric, BUDGET_METRICS)
        budget = self.budget
        if isinstance(budget, bool) or not isinstance(budget, (int, float, np.number)) \
                or not math.isfinite(budget) or budget <= 0:
            raise ValueError(f"budget={budget!r} is not allowed; choose a finite number > 0")

    @classmethod
    def from_keywords(
        cls,
        reward: str = "val",
        budget_scope: str | None = None,
        budget_metric: str | None = None,
        budget: float | None = None,
    ) -> "Reward":
        """The reward the envs' keywords name.

        :param reward: ``"val"`` or ``"param"``.
        :param budget_scope: ``"cells"`` (the default: the two cells' parameters, column
            ``cell_parameters``) or ``"network"`` (the whole network, ``trainable_parameters``).
        :param budget_metric: any column of :data:`BUDGET_METRICS` (e.g. ``"flops"``,
            ``"latency_ms"``, ``"training_time"``); an alternative to ``budget_scope``.
        :param budget: the budget ``n``; defaults to 150,000 for ``cell_parameters`` and must be
            given for every other metric.
        """
        if reward not in REWARDS:
            raise not_allowed("reward", reward, REWARDS)
        if budget_scope is not None and budget_scope not in BUDGET_SCOPES:
            raise not_allowed("budget_scope", budget_scope, tuple(BUDGET_SCOPES))
        if budget_metric is not None and budget_metric not in BUDGET_METRICS:
            raise not_allowed("budget_metric", budget_metric, BUDGET_METRICS)
        if budget_scope is not None and budget_metric is not None \
                and BUDGET_SCOPES[budget_scope] != budget_metric:
            raise ValueError(
                f"budget_scope={budget_scope!r} limits {BUDGET_SCOPES[budget_scope]!r} but "
                f"budget_metric={budget_metric!r} was also given; pass only one of them."
            )
        metric = budget_metric or BUDGET_SCOPES[budget_scope or "cells"]
        if budget is None:
            if metric not in DEFAULT_BUDGETS:
                raise ValueError(
                    f"{metric!r} has no default budget; pass budget=... in the metric's units "
                    f"(only {', '.join(DEFAULT_BUDGETS)} has a default)."
                )
            budget = DEFAULT_BUDGETS[metric]
        return cls(reward, metric, budget)

    def budget_met(self, budget_value):
        """Whether ``budget_value`` (a number or an array) is strictly below the budget."""
        return budget_value < self.budget

    def __call__(self, validation_accuracy, budget_value):
        """The reward for a cell (numbers) or many cells (arrays) with these results."""
        if isinstance(budget_value, np.ndarray):
            penalised = budget_value >= self.budget if self.kind == "param" \
                else np.zeros(budget_value.shape, dtype=bool)
            return np.where(penalised, R_PARAM_PENALTY, validation_accuracy).astype(np.float64)
        if self.kind == "param" and not budget_value < self.budget:
            return R_PARAM_PENALTY
        return float(validation_accuracy)


@dataclass(frozen=True)
class Optimum:
    """A table's best cell under one reward, and the cells that tie with it within seed noise.

    :param arch: the best cell's string form.
    :param reward: its mean reward.
    :param noise: the table's seed noise
        (:meth:`~nas_env.tables.reward_table.RewardTable.seed_noise`).
    :param near: every cell whose mean reward is at least ``reward - noise``, best first (the
        best cell included): cells a search cannot be blamed for preferring.
    """

    arch: str
    reward: float
    noise: float
    near: tuple[str, ...]

