"""SB3 callback that logs a one-step architecture search the way the paper's figures show it."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import TensorBoardOutputFormat

# SB3's rollout buffer holds rewards as float32 (about 1e-5 resolution near 100).
HIT_TOLERANCE = 1e-4

ITERATION_FIELDS = [
    "iteration", "timesteps", "reward_mean", "reward_std", "reward_min", "reward_max",
    "best_reward", "best_arch", "distinct_archs", "cache_hits", "training_time",
    "optimum_probability",
]


class SearchProgressCallback(BaseCallback):
    """Per PPO iteration (one batch of sampled architectures), log the batch's reward statistics.

    Written to TensorBoard, with the iteration as the step, as ``charts/reward_mean``, ``charts/reward_std``,
    ``charts/reward_min``, ``charts/reward_max``, ``charts/best_reward``, ``charts/distinct_archs``,
    ``charts/cache_hits`` (sampled cells so far whose result came from the evaluation cache),
    ``charts/training_time`` (the simulated training seconds of the search so far) and
    ``charts/optimum_probability``, and appended to ``csv_path`` one row per iteration.

    Rewards are the env's own (``info["raw_reward"]`` where a reward transform wrapped the env), so
    curves stay on the paper's scale whatever the agent was trained on.

    :param csv_path: the per-iteration CSV to write.
    :param optimum_action: the table's best action, to log the policy's probability of it.
    :param optimum_reward: its reward, to detect the first hit and convergence.
    :param tolerance: convergence is the batch's minimum reward within this of ``optimum_reward``.
    :param progress: show a tqdm bar over iterations; without a terminal (output to a log file),
        print one line every 5% of the iterations instead.
    :param total_iterations: the bar's length.
    """

    def __init__(
        self,
        csv_path: str | Path,
        optimum_action: Sequence[int] | None = None,
        optimum_reward: float | None = None,
        tolerance: float = 0.1,
        progress: bool = True,
        total_iterations: int | None = None,
    ) -> None:
        super().__init__()
        self.csv_path = Path(csv_path)
        self.optimum_action = None if optimum_action is None else np.asarray(optimum_action)
        self.optimum_reward = optimum_reward
        self.tolerance = tolerance
        self.progress = progress
        self.total_iterations = total_iterations
        self._batch: list[float] = []
        self.iteration = 0
        self.best_reward = -np.inf
        self.best_arch: str | None = None
        self.archs_seen: set[str] = set()
        self.samples = 0
        self.cache_hits = 0
        self.training_time = 0.0
        self.first_hit_iteration: int | None = None
        self.convergence_iteration: int | None = None
        self.samples_to_first_hit: int | None = None
        self._bar = None
        self._writer = None

    def _on_training_start(self) -> None:
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with self.csv_path.open("w", newline="") as f:
            csv.writer(f).writerow(ITERATION_FIELDS)
        for fmt in self.logger.output_formats:
            if isinstance(fmt, TensorBoardOutputFormat):
                self._writer = fmt.writer
        if self.progress and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total_iterations, desc="iterations", unit="it")

    def _on_step(self) -> bool:
        for reward, info in zip(self.locals["rewards"], self.locals["infos"]):
            if "arch" not in info:  # a non-final step of a token-by-token env
                continue
            raw = float(info.get("raw_reward", reward))
            self._batch.append(raw)
            self.archs_seen.add(info.get("arch_key", info["arch"]))  # equivalent cells are one
            self.samples += 1
            self.cache_hits += bool(info.get("cached"))
            self.training_time += info.get("training_time", 0.0)
            if raw > self.best_reward:
                self.best_reward, self.best_arch = raw, info["arch"]
                if self._writer is not None:
                    self._writer.add_text("charts/best_arch", f"{raw:.3f} {info['arch']}",
                                          self.iteration + 1)
            hit = self.optimum_reward is not None and raw >= self.optimum_reward - HIT_TOLERANCE
            if hit and self.samples_to_first_hit is None:
                self.samples_to_first_hit = self.num_timesteps
        return True

    def optimum_probability(self) -> float:
        if self.optimum_action is None:
            return float("nan")
        policy = self.model.policy
        obs = torch.as_tensor(self.model._last_obs[:1], device=policy.device)
        action = torch.as_tensor(self.optimum_action[None], device=policy.device)
        with torch.no_grad():
            _, log_prob, _ = policy.evaluate_actions(obs, action)
        return float(log_prob.exp().item())

    def _on_rollout_end(self) -> None:
        if not self._batch:
            return
        self.iteration += 1
        rewards = np.asarray(self._batch)
        self._batch = []
        if self.optimum_reward is not None:
            if self.first_hit_iteration is None and rewards.max() >= self.optimum_reward - HIT_TOLERANCE:
                self.first_hit_iteration = self.iteration
            # HIT_TOLERANCE: SB3 stores rewards as float32, so a cell exactly `tolerance`
            # below the optimum must not miss by a rounding error.
            converged = rewards.min() >= self.optimum_reward - self.tolerance - HIT_TOLERANCE
            if converged and self.convergence_iteration is None:
                self.convergence_iteration = self.iteration
        row = {
            "iteration": self.iteration,
            "timesteps": self.num_timesteps,
            "reward_mean": rewards.mean(),
            "reward_std": rewards.std(),
            "reward_min": rewards.min(),
            "reward_max": rewards.max(),
            "best_reward": self.best_reward,
            "best_arch": self.best_arch,
            "distinct_archs": len(self.archs_seen),
            "cache_hits": self.cache_hits,
            "training_time": self.training_time,
            "optimum_probability": self.optimum_probability(),
        }
        for key in ITERATION_FIELDS[2:]:
            if key == "best_arch":
                continue
            if self._writer is not None:  # the iteration as the step, as the README's figures
                self._writer.add_scalar(f"charts/{key}", row[key], self.iteration)
            else:
                self.logger.record(f"charts/{key}", row[key])
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, ITERATION_FIELDS).writerow(row)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(mean=f"{row['reward_mean']:.2f}", best=f"{self.best_reward:.2f}")
        elif self.progress:
            every = max(1, (self.total_iterations or 20) // 20)
            if self.iteration % every == 0 or self.iteration == self.total_iterations:
                print(f"iteration {self.iteration}/{self.total_iterations or '?'}: batch mean "
                      f"{row['reward_mean']:.2f}, best {self.best_reward:.2f} "
                      f"({row['distinct_archs']} distinct cells)", flush=True)

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def summary(self) -> dict:
        """Best architecture, first hit of the optimum and convergence, as plain values."""
        return {
            "iterations": self.iteration,
            "best_arch": self.best_arch,
            "best_reward": self.best_reward,
            "distinct_archs": len(self.archs_seen),
            "samples": self.samples,
            "cache_hits": self.cache_hits,
            "optimum_reward": self.optimum_reward,
            "first_hit_iteration": self.first_hit_iteration,
            "samples_to_first_hit": self.samples_to_first_hit,
            "convergence_iteration": self.convergence_iteration,
            "tolerance": self.tolerance,
            "final_optimum_probability": (self.optimum_probability()
                                          if self.optimum_action is not None else None),
        }
