"""The one-step A_small search env, and the base both A_small envs share."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..benchmark import Reward, check_seed_mode, load_table, table_path as shipped_table_path
from ..spaces import NUM_OPS, InvalidArchitectureError


class TableSearchEnv(gym.Env):
    """What every A_small search env over a reward table shares: the table, the reward, the seed
    mode and the simulated cost. Subclasses define the spaces, ``reset`` and ``step``, and score a
    finished cell with :meth:`evaluate`.

    :param dataset: the dataset of the shipped table (``"mnist"``; ``"fashion_mnist"`` once its
        table is shipped). With ``table_path``, checked against the table's sidecar.
    :param protocol: the training protocol of the table (``"fast"``), likewise.
    :param table_path: an explicit table CSV instead of the shipped one.
    :param reward: ``"val"`` or ``"param"`` (see :class:`nas_env.benchmark.Reward`).
    :param budget_scope: ``"cells"`` (default) or ``"network"``.
    :param budget_metric: any budget metric of the table instead of a scope: ``"cell_parameters"``,
        ``"trainable_parameters"``, ``"flops"``, ``"latency_ms"``, ``"training_time"``.
    :param budget: the budget ``n`` (default 150,000 for cell parameters; required otherwise).
    :param seed_mode: ``"mean"`` (results averaged over training seeds) or ``"sample"`` (one seed's
        results, drawn from ``self.np_random``).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        dataset: str = "mnist",
        protocol: str = "fast",
        table_path: str | os.PathLike | None = None,
        reward: str = "val",
        budget_scope: str | None = None,
        budget_metric: str | None = None,
        budget: float | None = None,
        seed_mode: str = "mean",
    ) -> None:
        self.reward_fn = Reward.from_keywords(reward, budget_scope, budget_metric, budget)
        self.seed_mode = check_seed_mode(seed_mode)
        path = shipped_table_path(dataset, protocol) if table_path is None else table_path
        self.table = load_table(path)
        self._check_variant(dataset, protocol)
        self.table.check_metric(self.reward_fn.budget_metric)
        self.total_training_time = 0.0
        """Simulated cost: the summed training time (seconds) of every cell evaluated so far."""

    def _check_variant(self, dataset: str, protocol: str) -> None:
        meta = self.table.meta or {}
        recorded = {"dataset": meta.get("dataset"), "protocol": (meta.get("protocol") or {}).get("name")}
        for key, asked in (("dataset", dataset), ("protocol", protocol)):
            if recorded[key] is not None and recorded[key] != asked:
                raise ValueError(
                    f"reward table {self.table.path} records {key}={recorded[key]!r} but the env "
                    f"was made with {key}={asked!r}; pass {key}={recorded[key]!r} or another table."
                )

    def reset_cost(self) -> None:
        """Set the simulated cost back to zero, as at the start of a new search."""
        self.total_training_time = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Seed ``self.np_random``. A seeded reset starts a new search, so it also resets the
        simulated cost; an unseeded one (the next episode) keeps it."""
        super().reset(seed=seed)
        if seed is not None:
            self.reset_cost()

    def evaluate(self, index: int) -> tuple[float, dict[str, Any]]:
        """Look up the cell with index ``index``, charge its training time, return (reward, info)."""
        rng = self.np_random if self.seed_mode == "sample" else None
        info = self.table.lookup(index, self.seed_mode, rng)
        self.total_training_time += info["training_time"]
        budget_value = info[self.reward_fn.budget_metric]
        info["budget_met"] = self.reward_fn.budget_met(budget_value)
        info["total_training_time"] = self.total_training_time
        return self.reward_fn(info["validation_accuracy"], budget_value), info


def action_to_index(action) -> int:
    """The cell index ``8 * op1 + op2`` of an action ``[op1, op2]``, checked."""
    try:
        op1, op2 = action.tolist() if isinstance(action, np.ndarray) else action
        i1, i2 = int(op1), int(op2)
        if i1 == op1 and i2 == op2 and 0 <= i1 < NUM_OPS and 0 <= i2 < NUM_OPS:
            return i1 * NUM_OPS + i2
    except (TypeError, ValueError):
        pass
    raise InvalidArchitectureError(
        f"action {action!r} is outside MultiDiscrete([{NUM_OPS}, {NUM_OPS}]); allowed: two "
        f"integers [op1, op2], each 0 to {NUM_OPS - 1} (indices into nas_env.spaces.OPS)"
    )


class NASCellEnv(TableSearchEnv):
    """
    ## Description

    Neural architecture search over the cell space A_small of Arora & Krone as a one-step
    environment. An A_small cell applies two of eight operations in sequence, ``op2(op1(x))``; the
    child CNN stacks two such cells. Each step proposes one cell and is rewarded with the result of
    training its child network, looked up in a reward table that was trained beforehand
    (``reward_tables/``), so a step costs microseconds instead of minutes of training.

    ## Action Space

    The action is a `ndarray` with shape `(2,)`, `MultiDiscrete([8, 8])`: the indices of op1 and
    op2 in `nas_env.spaces.OPS` (a cell's `SmallCell.to_action()`).

    | Num | Op          | Num | Op          |
    |-----|-------------|-----|-------------|
    | 0   | conv1x3_3x1 | 4   | conv7x7     |
    | 1   | conv3x3     | 5   | max_pool2x2 |
    | 2   | sep_conv3x3 | 6   | avg_pool2x2 |
    | 3   | conv5x5     | 7   | identity    |

    An action outside the space raises `InvalidArchitectureError` naming the allowed range.

    ## Observation Space

    The paper's constant initial state: a `ndarray` of shape `(1,)`, `Box(0, 1, (1,), float32)`,
    always `[0.0]`. The controller's own memory, not the observation, carries the search.

    ## Rewards

    - `reward="val"`: the cell's validation accuracy in percent.
    - `reward="param"`: the paper's r_param: `-100.0` when the budget metric is at least the
      budget `n`, else the validation accuracy. By default the metric is the two cells' parameter
      count (`budget_scope="cells"`, `n = 150,000`); `budget_scope="network"` counts the whole
      network's parameters, and `budget_metric` names any other metric of the table (`"flops"`,
      `"latency_ms"`, `"training_time"`) with `budget` in its units.

    The test accuracy is reported in `info`, never part of the reward.

    ## Starting State

    Always the constant observation `[0.0]`.

    ## Episode End

    1. Termination: after one step; every episode evaluates one architecture.

    There is no truncation. Since the state never changes, stepping again without `reset()`
    evaluates another architecture.

    ## Info

    `step` returns the table's results for the cell: `arch` (string form), `arch_index`, `seed`
    (`None` for a seed mean), `num_seeds`, `validation_accuracy`, `test_accuracy`,
    `trainable_parameters`, `cell_parameters`, `flops`, `latency_ms`, `training_time`,
    `diverged`, plus `budget_met` and `total_training_time`, the simulated cost: the summed
    training time of every cell evaluated so far (also `env.unwrapped.total_training_time`). It
    survives `reset()`; a seeded `reset(seed=...)` starts a new search and sets it to zero, as does
    `env.unwrapped.reset_cost()`.

    ## Arguments

    | Parameter       | Type      | Default   | Description                                        |
    |-----------------|-----------|-----------|----------------------------------------------------|
    | `dataset`       | **str**   | `"mnist"` | dataset of the shipped table                       |
    | `protocol`      | **str**   | `"fast"`  | training protocol of the shipped table             |
    | `table_path`    | **str**   | `None`    | an explicit table CSV instead of the shipped one   |
    | `reward`        | **str**   | `"val"`   | `"val"` or `"param"`                               |
    | `budget_scope`  | **str**   | `None`    | `"cells"` (the default) or `"network"` parameters  |
    | `budget_metric` | **str**   | `None`    | any budget metric instead of a scope               |
    | `budget`        | **float** | `None`    | `n`: 150,000 for cell parameters, else required    |
    | `seed_mode`     | **str**   | `"mean"`  | `"mean"` over seeds or `"sample"` (one seed)       |

    A missing or malformed table raises an error naming the file; an unknown keyword value a
    `ValueError` naming the allowed ones.

    ```python
    >>> import gymnasium as gym
    >>> import nas_env
    >>> env = gym.make("NASCell-small-v0", reward="param")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step([1, 5])
    >>> info["arch"], terminated
    ('|conv3x3~0|+|max_pool2x2~1|', True)

    ```

    ## Version History

    * v0: Initial version.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action_space = spaces.MultiDiscrete([NUM_OPS, NUM_OPS])
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        reward, info = self.evaluate(action_to_index(action))
        return np.zeros(1, np.float32), reward, True, False, info
