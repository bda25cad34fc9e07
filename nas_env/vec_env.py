"""One vectorized env for a live search: a batch of architectures evaluated in one call.

SB3 collects a rollout one ``VecEnv.step`` at a time. With ``n_envs`` one-step NAS envs and
``n_steps=1``, one step is one PPO iteration's whole batch; :class:`NASBatchVecEnv` hands that
batch to the shared evaluator at once, so its backend can train the distinct uncached cells in
parallel (:mod:`nas_env.backends`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from .envs.search_env import CellSearchEnv, reward_cells
from .evaluation.factory import LIVE_KEYWORDS


class NASBatchVecEnv(DummyVecEnv):
    """``n_envs`` copies of a one-step cell-search env that share one evaluator, stepped as a batch.

    ``step_wait`` decodes every action, skips the cells an r_param size budget rules out, and
    passes the rest to the evaluator in one ``evaluate_batch`` call: a live evaluator answers its
    cache, trains each distinct remaining cell once (a batch that repeats a cell pays one
    training) on its backend, and returns the results in the batch's order. Rewards, infos
    (including ``terminal_observation``) and the automatic reset are those of SB3's
    ``DummyVecEnv``; each copy keeps its own ``np_random`` and its own ``total_training_time``
    (:attr:`total_training_time` is their sum).

    ## Arguments

    | Parameter    | Type    | Default              | Description                                   |
    |--------------|---------|----------------------|-----------------------------------------------|
    | `env_id`     | **str** | `"NASCell-large-v0"` | a one-step env: `NASCell-large-v0` or `NASCell-small-v0` |
    | `n_envs`     | **int** | `20`                 | architectures per step (PPO: `n_steps=1`)    |
    | `backend`    | **str** | `None`               | `"inline"`, `"process"`, `"ray"` (live only; `None`: the env's default, inline) |
    | `workers`    | **int** | `None`               | jobs at once for `"process"` / `"ray"`       |
    | `**env_kwargs` |       |                      | the env's keywords (`blocks`, `protocol`, `cache_path`, `threads`, ...) |

    ```python
    from stable_baselines3 import PPO
    from agents.autoregressive_policy import AutoregressiveLSTMPolicy
    from nas_env.vec_env import NASBatchVecEnv

    venv = NASBatchVecEnv("NASCell-large-v0", n_envs=20, backend="process", workers=2)
    PPO(AutoregressiveLSTMPolicy, venv, n_steps=1, batch_size=20).learn(20 * 20)
    ```
    """

    def __init__(self, env_id: str = "NASCell-large-v0", n_envs: int = 20, backend=None,
                 workers: int | None = None, **env_kwargs: Any) -> None:
        if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
            raise ValueError(f"n_envs={n_envs!r}; allowed: an integer >= 1")
        live = {k: v for k, v in (("backend", backend), ("workers", workers)) if v is not None}
        first = gym.make(env_id, **env_kwargs, **live)
        base = first.unwrapped
        if not isinstance(base, CellSearchEnv) or not hasattr(base, "decode"):
            first.close()
            raise ValueError(f"{env_id} is not a one-step cell-search env; NASBatchVecEnv needs "
                             "one whose action is a whole architecture, such as "
                             "NASCell-large-v0 or NASCell-small-v0")
        shared = {k: v for k, v in env_kwargs.items()
                  if k not in LIVE_KEYWORDS
                  and k not in ("evaluator", "table_path", "fidelity", "allow_partial_table")}
        shared["evaluator"] = base.evaluator
        makers = [lambda: first] + [lambda: gym.make(env_id, **shared)] * (n_envs - 1)
        super().__init__(makers)
        self.bases: list[CellSearchEnv] = [env.unwrapped for env in self.envs]

    @property
    def evaluator(self):
        """The evaluator every copy shares."""
        return self.bases[0].evaluator

    @property
    def total_training_time(self) -> float:
        """The simulated cost of everything evaluated so far, summed over the copies."""
        return float(sum(base.total_training_time for base in self.bases))

    def step_wait(self) -> VecEnvStepReturn:
        cells = [base.decode(action) for base, action in zip(self.bases, self.actions)]
        scored = reward_cells(self.bases, cells)
        for i, (reward, info) in enumerate(scored):
            terminal = self.buf_obs[None][i].copy()
            self.buf_rews[i] = reward
            self.buf_dones[i] = True
            info["TimeLimit.truncated"] = False
            info["terminal_observation"] = terminal
            self.buf_infos[i] = info
            obs, self.reset_infos[i] = self.envs[i].reset()
            self._save_obs(i, obs)
        return (self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones),
                [dict(info) for info in self.buf_infos])
