"""The one-step A_small search env."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from ..spaces import NUM_OPS, InvalidArchitectureError, SmallCell
from .search_env import CellSearchEnv

SMALL_CELLS: tuple[SmallCell, ...] = tuple(SmallCell.all())
"""The 64 cells by index, built once: a step picks one instead of constructing it."""


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


class NASCellEnv(CellSearchEnv):
    """
    ## Description

    Neural architecture search over the cell space A_small of Arora & Krone as a one-step
    environment. An A_small cell applies two of eight operations in sequence, ``op2(op1(x))``; the
    child CNN stacks two such cells. Each step proposes one cell and is rewarded with the result of
    training its child network, looked up in a reward table that was trained beforehand
    (``reward_tables/``), so a step costs microseconds instead of minutes of training. With
    `evaluator="live"` each step trains the child instead (for a dataset or protocol without a
    shipped table), through the evaluation cache of `NASCell-large-v0`.

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

    - `reward="val"`: the cell's validation accuracy in percent; with `evaluator="live"` and a
      training-free protocol (`"zc-vote"`, `"zc-synflow"`), the cell's `score`: the mean
      percentile (0 to 100) of its zero-cost scores among the 64 cells, with no training; under a
      protocol read by its late training loss (`"loss12k"`, `"loss16k"`), the run's `score`,
      `100 * exp(-L)` for its mean training loss `L` over the second half of the epoch.
    - `reward="param"`: the paper's r_param: `-100.0` when the budget metric is at least the
      budget `n`, else the `reward="val"` reward. By default the metric is the two cells' parameter
      count (`budget_scope="cells"`, `n = 150,000`); `budget_scope="network"` counts the whole
      network's parameters, and `budget_metric` names any other metric of the table (`"flops"`,
      `"latency_ms"`, `"training_time"`) with `budget` in its units. Size budgets are checked from
      the architecture first: an over-budget cell is not looked up or trained
      (`info["budget_met"]` is `False`, no training time charged).
    - **Failure**: a cell whose training diverged (`info["failure"] == "diverged"`) or, live, ran
      out of GPU memory gets `0.0` under r_val and `-100.0` under r_param, never better than the
      budget penalty.

    The test accuracy is reported in `info`, never part of the reward.

    ## Starting State

    Always the constant observation `[0.0]`.

    ## Episode End

    1. Termination: after one step; every episode evaluates one architecture.

    There is no truncation. Since the state never changes, stepping again without `reset()`
    evaluates another architecture.

    ## Info

    `step` returns the evaluation's record (`nas_env.results.EvalResult`, the same keys for a table
    lookup and a training run): `arch` (string form), `arch_key`, `arch_index`, `seed` (`None`
    for a seed mean), `num_seeds`, `validation_accuracy`, `test_accuracy`, `val_curve`,
    `train_loss_sum` and `loss_curve` (live training only), `score` and `proxy_scores`
    (training-free protocols only), `training_time`, `trainable_parameters`, `cell_parameters`, `flops`, `latency_ms`, `diverged`,
    `failure`, `dataset`, `protocol`, `fidelity`, `device`, `precision`; plus `budget_met` and
    `total_training_time`, the simulated cost: the summed training time of every cell evaluated so
    far (also `env.unwrapped.total_training_time`). It survives `reset()`; a seeded
    `reset(seed=...)` starts a new search and sets it to zero, as does `env.unwrapped.reset_cost()`.

    Where the figures came from is not in `info` (the same seed and action give the same info,
    trained or cached): `env.unwrapped.last_provenance` holds the last cell's `source`
    (`"table"`, `"training"`, `"cache"` or `"skipped"`), `worker`, `hardware`, `threads`,
    `wait_seconds` and `run_seconds`, and `env.unwrapped.source_counts` counts every cell evaluated by source.

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
    | `fidelity`      | **float** | `1.0`     | table only: the fraction of training to report (the |
    |                 |           |           | curve's checkpoint, e.g. 0.25; charged that share)  |
    | `evaluator`     | **str**   | `"table"` | `"table"`, `"live"` or an `Evaluator` instance      |

    With `evaluator="live"`, the keywords of `NASCell-large-v0` apply too: `train_seeds`,
    `cache_path`, `data_root`, `device`, `threads`, `measure_latency`, `backend`, `workers`,
    `checkpoint_dir`, `checkpoint_every` (a training-free protocol takes only `cache_path`,
    `data_root` and `threads`). With a table, `allow_partial_table=True` loads one whose
    cells have different seed counts (a build in progress).

    A missing, malformed or incomplete table raises an error naming the file (for a missing one,
    also `evaluator="live"`); an unknown keyword value a `ValueError` naming the allowed ones.

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
        super().__init__("small", **kwargs)
        self.action_space = spaces.MultiDiscrete([NUM_OPS, NUM_OPS])
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def decode(self, action) -> SmallCell:
        """The cell an action names (checked)."""
        return SMALL_CELLS[action_to_index(action)]

    def step(self, action):
        reward, info = self.reward_cell(self.decode(action))
        return np.zeros(1, np.float32), reward, True, False, info
