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

from nas_env.rewards import Optimum

from .search_stats import batch_mode, first_hit, lasting_convergence

ITERATION_FIELDS = [
    "iteration", "timesteps", "reward_mean", "reward_std", "reward_min", "reward_max",
    "best_reward", "best_arch", "mode_arch", "mode_share", "distinct_archs", "cache_hits",
    "training_time", "optimum_probability",
]


class SearchProgressCallback(BaseCallback):
    """Per PPO iteration (one batch of sampled architectures), log the batch's reward statistics
    and judge the search by the cells it sampled (:mod:`agents.search_stats`).

    Written to TensorBoard, with the iteration as the step, as ``charts/reward_mean``,
    ``charts/reward_std``, ``charts/reward_min``, ``charts/reward_max``, ``charts/best_reward``,
    ``charts/mode_share`` (the share of the batch's most frequent cell), ``charts/distinct_archs``,
    ``charts/cache_hits`` (sampled cells so far whose result came from the evaluation cache),
    ``charts/training_time`` (the simulated training seconds of the search so far) and
    ``charts/optimum_probability``, and appended to ``csv_path`` one row per iteration.

    Rewards are the env's own (``info["raw_reward"]`` where a reward transform wrapped the env), so
    curves stay on the paper's scale whatever the agent was trained on.

    :param csv_path: the per-iteration CSV to write.
    :param optimum: the table's :class:`~nas_env.rewards.Optimum` under the env's reward (its
        best cell and the cells within seed noise of it); ``None`` where it is unknown (live).
    :param optimum_action: the best cell's action, to log the policy's probability of it (only
        where one action is one whole cell).
    :param progress: show a tqdm bar over iterations; without a terminal (output to a log file),
        print one line every 5% of the iterations instead.
    :param total_iterations: the bar's length.
    """

    def __init__(
        self,
        csv_path: str | Path,
        optimum: Optimum | None = None,
        optimum_action: Sequence[int] | None = None,
        progress: bool = True,
        total_iterations: int | None = None,
    ) -> None:
        super().__init__()
        self.csv_path = Path(csv_path)
        self.optimum = optimum
        self.optimum_action = None if optimum_action is None else np.asarray(optimum_action)
        self.progress = progress
        self.total_iterations = total_iterations
        self._batch: list[float] = []
        self._batch_archs: list[str] = []
        self.archs: list[str] = []
        self.batch_size: int | None = None
        self.iteration = 0
        self.best_reward = -np.inf
        self.best_arch: str | None = None
        self.archs_seen: set[str] = set()
        self.samples = 0
        self.cache_hits = 0
        self._hits_before = 0  # the envs' cache hits before this search began
        self.training_time = 0.0
        self._bar = None
        self._writer = None
        self._csv_file = None
        self._csv = None

    def _on_training_start(self) -> None:
        self._hits_before = self._env_cache_hits()
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_csv()
        # Kept open for the whole search and flushed after every row, so a search that is
        # killed loses no finished iteration and an iteration costs no open and close.
        self._csv_file = self.csv_path.open("w", newline="")
        self._csv = csv.DictWriter(self._csv_file, ITERATION_FIELDS)
        self._csv.writeheader()
        self._csv_file.flush()
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
            self._batch_archs.append(info["arch"])
            self.archs_seen.add(info.get("arch_key", info["arch"]))  # equivalent cells are one
            self.samples += 1
            self.training_time += info.get("training_time", 0.0)
            if raw > self.best_reward:
                self.best_reward, self.best_arch = raw, info["arch"]
                if self._writer is not None:
                    self._writer.add_text("charts/best_arch", f"{raw:.3f} {info['arch']}",
                                          self.iteration + 1)
        return True

    def _env_cache_hits(self) -> int:
        """Cells the training envs have had served from the evaluation cache (their
        ``source_counts``; 0 for envs that keep none)."""
        try:
            counts = self.training_env.get_attr("source_counts")
        except AttributeError:
            return 0
        return sum(c["cache"] for c in counts)

    def optimum_probability(self) -> float:
        """The policy's probability of sampling the best cell (NaN where unknown, or where an
        action is one token of a cell)."""
        space = self.model.action_space
        if self.optimum_action is None or not hasattr(space, "nvec") \
                or len(space.nvec) != len(self.optimum_action):
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
        self.cache_hits = self._env_cache_hits() - self._hits_before
        rewards = np.asarray(self._batch)
        mode_arch, mode_share = batch_mode(self._batch_archs)
        self.batch_size = self.batch_size or len(self._batch_archs)
        self.archs += self._batch_archs
        self._batch, self._batch_archs = [], []
        row = {
            "iteration": self.iteration,
            "timesteps": self.num_timesteps,
            "reward_mean": rewards.mean(),
            "reward_std": rewards.std(),
            "reward_min": rewards.min(),
            "reward_max": rewards.max(),
            "best_reward": self.best_reward,
            "best_arch": self.best_arch,
            "mode_arch": mode_arch,
            "mode_share": mode_share,
            "distinct_archs": len(self.archs_seen),
            "cache_hits": self.cache_hits,
            "training_time": self.training_time,
            "optimum_probability": self.optimum_probability(),
        }
        for key in ITERATION_FIELDS[2:]:
            if key in ("best_arch", "mode_arch"):
                continue
            if self._writer is not None:  # the iteration as the step, as the README's figures
                self._writer.add_scalar(f"charts/{key}", row[key], self.iteration)
            else:
                self.logger.record(f"charts/{key}", row[key])
        self._csv.writerow(row)
        self._csv_file.flush()
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
        self._close_csv()
        if self._bar is not None:
            self._bar.close()

    def _close_csv(self) -> None:
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None

    def _iteration_of(self, sample: int | None) -> int | None:
        return None if sample is None else (sample - 1) // (self.batch_size or 1) + 1

    def summary(self) -> dict:
        """The search judged by its cells: the first iteration that sampled the optimum (and a
        cell within noise of it), lasting convergence and on what, as plain values."""
        converged_at, converged_arch = lasting_convergence(self.archs, self.batch_size or 1)
        opt = self.optimum
        hit = first_hit(self.archs, [opt.arch]) if opt else None
        near_hit = first_hit(self.archs, opt.near) if opt else None
        return {
            "iterations": self.iteration,
            "best_arch": self.best_arch,
            "best_reward": self.best_reward,
            "distinct_archs": len(self.archs_seen),
            "samples": self.samples,
            "cache_hits": self.cache_hits,
            "optimum_arch": opt.arch if opt else None,
            "optimum_reward": opt.reward if opt else None,
            "near_optimum_archs": list(opt.near) if opt else None,
            "first_hit_iteration": self._iteration_of(hit),
            "samples_to_first_hit": hit,
            "first_near_hit_iteration": self._iteration_of(near_hit),
            "convergence_iteration": converged_at,
            "converged_arch": converged_arch,
            "converged_on_optimum": bool(opt and converged_arch == opt.arch) if opt else None,
            "converged_near_optimum": bool(opt and converged_arch in opt.near) if opt else None,
            "final_optimum_probability": (self.optimum_probability()
                                          if self.optimum_action is not None else None),
        }
