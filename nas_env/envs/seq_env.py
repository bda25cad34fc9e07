"""The token-by-token A_small search env: one op per step."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from ..spaces import NUM_OPS, op_index
from .cell_env import SMALL_CELLS
from .search_env import CellSearchEnv

CELL_TOKENS = 2
"""Ops per A_small cell, hence steps per episode."""


class NASCellSeqEnv(CellSearchEnv):
    """
    ## Description

    The search of `NASCell-small-v0` as a sequential decision process: the agent writes an
    A_small cell one op at a time, op1 then op2, and is rewarded when the cell is complete. A
    stock agent (SB3's PPO, A2C or DQN with `MlpPolicy`) can search it unchanged; the rewards are
    those of `NASCell-small-v0` for the same cell, computed by the same code.

    ## Action Space

    `Discrete(8)`: the index of the next op in `nas_env.spaces.OPS` (see `NASCell-small-v0`).
    Any other action raises `InvalidArchitectureError` naming the allowed range.

    ## Observation Space

    The tokens so far, `MultiDiscrete([9, 9])`: entry `t` is `0` while op `t` is unchosen and
    `1 + op index` once it is chosen. SB3 one-hot encodes it for `MlpPolicy`.

    | Step | Observation          |
    |------|----------------------|
    | 0    | `[0, 0]`             |
    | 1    | `[op1 + 1, 0]`       |
    | 2    | `[op1 + 1, op2 + 1]` |

    ## Rewards

    `0.0` after op1; after op2 the reward of `NASCell-small-v0` for the cell `[op1, op2]`, with
    the same `reward`, budget and `seed_mode` keywords. The test accuracy is never rewarded.

    ## Starting State

    No token chosen: `[0, 0]`.

    ## Episode End

    1. Termination: after the second op, when the cell is complete.

    There is no truncation. Stepping after the end raises `ResetNeeded`.

    ## Info

    Empty after op1; after op2 the same keys as `NASCell-small-v0`, including the simulated cost
    `total_training_time` (kept across `reset()`, zeroed by a seeded reset or
    `env.unwrapped.reset_cost()`).

    ## Arguments

    The same keywords as `NASCell-small-v0`: `dataset`, `protocol`, `table_path`, `reward`,
    `budget_scope`, `budget_metric`, `budget`, `seed_mode`, `fidelity`, `evaluator` and, live, its
    keywords.

    ```python
    >>> import gymnasium as gym
    >>> import nas_env
    >>> env = gym.make("NASCellSeq-small-v0", reward="param")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(1)
    >>> obs, reward, terminated, truncated, info = env.step(5)
    >>> info["arch"], terminated
    ('|conv3x3~0|+|max_pool2x2~1|', True)

    ```

    ## Version History

    * v0: Initial version.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("small", **kwargs)
        self.action_space = spaces.Discrete(NUM_OPS)
        self.observation_space = spaces.MultiDiscrete([NUM_OPS + 1] * CELL_TOKENS)
        self._tokens: list[int] | None = None

    def _observation(self) -> np.ndarray:
        obs = np.zeros(CELL_TOKENS, dtype=np.int64)
        obs[: len(self._tokens)] = np.add(self._tokens, 1)
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._tokens = []
        return self._observation(), {}

    def step(self, action):
        if self._tokens is None or len(self._tokens) == CELL_TOKENS:
            raise ResetNeeded("the episode has ended (or never began); call reset() before step()")
        self._tokens.append(op_index(action))
        if len(self._tokens) < CELL_TOKENS:
            return self._observation(), 0.0, False, False, {}
        reward, info = self.reward_cell(SMALL_CELLS[self._tokens[0] * NUM_OPS + self._tokens[1]])
        return self._observation(), reward, True, False, info
