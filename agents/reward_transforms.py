"""Reward transforms for training on a budgeted reward without changing what is reported."""

from __future__ import annotations

import gymnasium as gym

from nas_env.rewards import R_PARAM_PENALTY


class PenaltyToFloor(gym.RewardWrapper):
    """Replace the r_param penalty (-100) by a floor just below the worst feasible cell.

    The paper's penalty sits about 200 points below the accuracies, so in a batch that mixes
    feasible and infeasible cells it dominates PPO's advantage normalisation and the value loss,
    and the accuracy differences between feasible cells (tenths of a point) all but vanish. The
    floor keeps the ordering (every infeasible cell still ranks below every feasible one) on the
    accuracy scale. The untransformed reward stays in ``info["raw_reward"]`` for logging.

    :param env: an env with a reward table (``env.unwrapped.table`` and ``.reward_fn``).
    :param margin: how far below the worst feasible mean reward the floor lies.
    """

    def __init__(self, env: gym.Env, margin: float = 1.0) -> None:
        super().__init__(env)
        base = env.unwrapped
        rewards = base.table.rewards(base.reward_fn)
        feasible = rewards[rewards > R_PARAM_PENALTY]
        self.floor = float(feasible.min() - margin) if feasible.size else R_PARAM_PENALTY

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "raw_reward": float(reward)}
        return obs, self.reward(reward), terminated, truncated, info

    def reward(self, reward: float) -> float:
        return self.floor if reward <= R_PARAM_PENALTY else float(reward)
