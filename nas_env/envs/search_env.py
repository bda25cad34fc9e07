"""The base every cell-search env shares: an evaluator, the reward, the budget and the cost."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..rewards import R_PARAM_PENALTY, Reward
from ..evaluation.factory import make_evaluator
from ..evaluation.interface import SIZE_METRICS, Evaluator
from ..evaluation.records import skipped_result
from ..results import PROVENANCE_KEYS
from ..spaces import LargeCell, SmallCell

MAX_ENUMERATED_ACTIONS = 1 << 16
"""The most actions :meth:`CellSearchEnv.allowed_actions` enumerates (A_small has 64)."""

FAILURE_REWARDS = {"val": 0.0, "param": R_PARAM_PENALTY}
"""The reward of an evaluation that failed (diverged, out of memory): an accuracy of 0 under
r_val; under r_param the penalty, so a failure is never better than an over-budget cell."""


class CellSearchEnv(gym.Env):
    """What every cell-search env shares. Subclasses define the spaces, ``reset`` and ``step``,
    and score a finished cell with :meth:`reward_cell`; where the result comes from (a reward
    table or a training run) is the evaluator's business, not the env's.

    :param space: ``"small"`` or ``"large"``: the search space (set by the subclass).
    :param dataset: ``"mnist"`` or ``"fashion_mnist"``.
    :param protocol: the training protocol (``"fast"``, ``"cheap"``, ``"loss12k"``, ``"loss16k"``,
        ``"paper"``).
    :param evaluator: ``"table"`` (a reward table: A_small only), ``"live"`` (train each cell,
        cached) or an :class:`~nas_env.evaluation.interface.Evaluator`.
    :param table_path: an explicit table CSV instead of the shipped one (``"table"`` only).
    :param allow_partial_table: load a table whose cells have different seed counts (a build in
        progress; each record's ``num_seeds`` says how many); otherwise that is an error.
    :param reward: ``"val"`` or ``"param"`` (see :class:`nas_env.rewards.Reward`).
    :param budget_scope: ``"cells"`` (default) or ``"network"``.
    :param budget_metric: any budget metric instead of a scope.
    :param budget: the budget ``n`` (default 150,000 for cell parameters; required otherwise).
    :param seed_mode: ``"mean"`` over the training seeds or ``"sample"`` (one seed, drawn from
        ``self.np_random``).
    :param fidelity: ``"table"`` only: the fraction of the protocol's training to report.
    :param render_mode: accepted for Gymnasium's API; these envs render nothing, so only ``None``.

    ``data_root``, ``cache_path``, ``train_seeds``, ``device``, ``threads``, ``measure_latency``,
    ``backend``, ``workers``, ``checkpoint_dir`` and ``checkpoint_every`` are for ``"live"``
    only; see :class:`~nas_env.evaluation.live.LiveEvaluator` (``cache_path`` is its ``cache``).
    ``backend`` pays off in :class:`~nas_env.vec_env.NASBatchVecEnv`, which hands a whole batch
    of actions to one evaluator.

    A step's ``info`` is the cell's :class:`~nas_env.results.EvalResult` without the keys that say
    where it came from (:data:`~nas_env.results.PROVENANCE_KEYS`), plus ``budget_met`` and
    ``total_training_time``: the same seed and action give the same info whether the cell was
    trained, served from the cache or looked up. Where it came from is kept in
    :attr:`last_provenance` and counted in :attr:`source_counts`.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        space: str,
        dataset: str = "mnist",
        protocol: str = "fast",
        evaluator: str | Evaluator = "table",
        table_path: str | os.PathLike | None = None,
        allow_partial_table: bool = False,
        reward: str = "val",
        budget_scope: str | None = None,
        budget_metric: str | None = None,
        budget: float | None = None,
        seed_mode: str = "mean",
        fidelity: float = 1.0,
        data_root: str | os.PathLike | None = None,
        cache_path: str | os.PathLike | None = None,
        train_seeds: Sequence[int] | None = None,
        device: str | None = None,
        threads: int | None = None,
        measure_latency: bool | None = None,
        backend=None,
        workers: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r}; this env renders nothing, so only None")
        self.render_mode = render_mode
        self.reward_fn = Reward.from_keywords(reward, budget_scope, budget_metric, budget)
        self.evaluator = make_evaluator(
            space, evaluator, dataset, protocol, table_path, seed_mode, fidelity,
            allow_partial_table, data_root=data_root, cache_path=cache_path,
            train_seeds=train_seeds, device=device,
            threads=threads, measure_latency=measure_latency, backend=backend, workers=workers,
            checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
        self.evaluator.check_metric(self.reward_fn.budget_metric)
        self.failure_reward = FAILURE_REWARDS[self.reward_fn.kind]
        self._precheck = self.reward_fn.kind == "param" and self.reward_fn.budget_metric in SIZE_METRICS
        self.total_training_time = 0.0
        """Simulated cost: the summed training time (seconds) of every cell evaluated so far."""
        self.last_provenance: dict[str, Any] | None = None
        """Where the last cell's figures came from: ``source`` (``"table"``, ``"training"``,
        ``"cache"`` or ``"skipped"``) and the worker keys of
        :data:`~nas_env.results.PROVENANCE_KEYS`."""
        self.source_counts: Counter = Counter()
        """Cells evaluated by this env so far, by ``source`` (never reset)."""

    @property
    def table(self):
        """The evaluator's reward table, or ``None`` when cells are trained live."""
        return self.evaluator.table

    def reset_cost(self) -> None:
        """Set the simulated cost back to zero, as at the start of a new search."""
        self.total_training_time = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Seed ``self.np_random``. A seeded reset starts a new search, so it also resets the
        simulated cost; an unseeded one (the next episode) keeps it."""
        super().reset(seed=seed)
        if seed is not None:
            self.reset_cost()

    def reward_cell(self, cell: SmallCell | LargeCell) -> tuple[float, dict[str, Any]]:
        """Evaluate ``cell`` (unless its size is over an r_param budget: then it costs nothing),
        charge its training time, return (reward, info)."""
        return reward_cells([self], [cell])[0]

    def evaluate(self, cell: SmallCell | LargeCell) -> tuple[float, dict[str, Any]]:
        """Deprecated name of :meth:`reward_cell` (``evaluate`` is the evaluator's method)."""
        warnings.warn("CellSearchEnv.evaluate is deprecated; call reward_cell", DeprecationWarning,
                      stacklevel=2)
        return self.reward_cell(cell)

    def allowed_actions(self) -> np.ndarray:
        """Which actions the env evaluates instead of rejecting on sight: a boolean array of
        shape ``action_space.nvec``. Under r_param with a size budget (parameters, or anything
        else the architecture alone decides) it marks the cells within the budget; otherwise
        every action. It feeds the autoregressive policy's ``allowed_actions``
        (``agents.ppo_search.make_ppo(mask_over_budget=True)``), which then never proposes an
        over-budget cell.

        :raises ValueError: for an action space that is not ``MultiDiscrete`` or has more than
            :data:`MAX_ENUMERATED_ACTIONS` actions (a 5-block A_large space has about 10^17).
        """
        if not isinstance(self.action_space, spaces.MultiDiscrete):
            raise ValueError(f"allowed_actions needs a MultiDiscrete action space, not {self.action_space}")
        nvec = tuple(int(n) for n in self.action_space.nvec)
        count = int(np.prod(nvec, dtype=object))
        if count > MAX_ENUMERATED_ACTIONS:
            raise ValueError(f"allowed_actions enumerates every action; this space has {count:,}, more than "
                             f"{MAX_ENUMERATED_ACTIONS:,} (A_small, or A_large with one block, fit)")
        allowed = np.ones(nvec, dtype=bool)
        if self._precheck:
            metric = self.reward_fn.budget_metric
            for action in np.ndindex(*nvec):
                sizes = self.evaluator.size(self.decode(np.array(action)))
                allowed[action] = self.reward_fn.budget_met(sizes[metric])
        return allowed

    def _skipped(self, cell: SmallCell | LargeCell) -> dict | None:
        """The skipped record of ``cell`` if an r_param size budget rules it out, else ``None``."""
        if self._precheck:
            sizes = self.evaluator.size(cell)
            if not self.reward_fn.budget_met(sizes[self.reward_fn.budget_metric]):
                return skipped_result(cell, sizes, self.evaluator)
        return None

    def _scored(self, result: dict) -> tuple[float, dict[str, Any]]:
        info = {k: v for k, v in result.items() if k not in PROVENANCE_KEYS}
        self.last_provenance = {k: result[k] for k in PROVENANCE_KEYS}
        self.source_counts[result["source"]] += 1
        self.total_training_time += info["training_time"]
        budget_value = info[self.reward_fn.budget_metric]
        info["budget_met"] = bool(self.reward_fn.budget_met(budget_value))
        info["total_training_time"] = self.total_training_time
        if info["failure"] is not None:
            return self.failure_reward, info
        return self.reward_fn(info[self.evaluator.reward_key], budget_value), info

    def close(self) -> None:
        self.evaluator.close()
        super().close()


def reward_cells(envs: Sequence[CellSearchEnv],
                 cells: Sequence[SmallCell | LargeCell]) -> list[tuple[float, dict[str, Any]]]:
    """Score ``cells[i]`` in ``envs[i]`` (their unwrapped envs, all sharing one evaluator) with
    one call of the evaluator's ``evaluate_batch``: cells over an r_param size budget are
    skipped, each env's ``np_random`` draws its cell's training seed where the seed mode samples,
    and each env is charged its own cell's training time. Returns (reward, info) per cell."""
    evaluator = envs[0].evaluator
    if any(env.evaluator is not evaluator for env in envs):
        raise ValueError("reward_cells needs envs that share one evaluator")
    records: list[dict | None] = [env._skipped(cell) for env, cell in zip(envs, cells)]
    todo = [i for i, record in enumerate(records) if record is None]
    evaluated = evaluator.evaluate_batch([cells[i] for i in todo], [envs[i].np_random for i in todo])
    for i, record in zip(todo, evaluated):
        records[i] = record
    return [env._scored(record) for env, record in zip(envs, records)]
