"""A one-step ``MultiDiscrete`` bandit with a fixed reward table: a stand-in for the NAS env.

It has the NAS env's shape (constant observation, one action, episode over) without a reward
table on disk, so the controller's tests and benchmark run anywhere.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def two_token_rewards(nvec: Sequence[int] = (8, 8), best: Sequence[int] = (5, 2)) -> np.ndarray:
    """A reward table whose best arm needs both tokens right.

    One right token earns 0.3, both earn 1.0; every other arm earns 0.
    """
    first, second = np.meshgrid(np.arange(nvec[0]), np.arange(nvec[1]), indexing="ij")
    right_first, right_second = first == best[0], second == best[1]
    return 0.3 * (right_first ^ right_second) + 1.0 * (right_first & right_second)


class MultiDiscreteBandit(gym.Env):
    """Description:
        A one-step bandit: the action picks one cell of a reward table.

    Action Space:
        ``MultiDiscrete(rewards.shape)``: one token per axis of the table.

    Observation Space:
        ``Box(0, 1, (1,), float32)``, always ``[0.0]``.

    Rewards:
        ``rewards[action]``.

    Starting State:
        The constant observation.

    Episode End:
        Termination after the first step.

    Arguments:
        ``rewards``: the reward table (default :func:`two_token_rewards`).

    Example::

        env = MultiDiscreteBandit()
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, rewards: np.ndarray | None = None) -> None:
        self.rewards = np.asarray(two_token_rewards() if rewards is None else rewards, dtype=np.float64)
        self.action_space = spaces.MultiDiscrete(self.rewards.shape)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self._obs = np.zeros(1, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self._obs.copy(), {}

    def step(self, action):
        reward = float(self.rewards[tuple(int(a) for a in action)])
        return self._obs.copy(), reward, True, False, {}
