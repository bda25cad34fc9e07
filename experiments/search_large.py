"""One live search of ``NASCell-large-v0`` (experiment 3): any searcher, a budget of cells, a cache.

Runs one searcher of :data:`agents.baselines.SEARCHERS` (``ppo``: the autoregressive LSTM policy
with the project's PPO defaults, 20 cells per iteration; ``random``; ``evolution``) for
``--budget`` sampled cells, each trained live under ``--protocol`` and stored in the evaluation
cache. The search is deterministic for a seed, so an interrupted run resumes by running the same
command again: every cell it had trained comes back from the cache in microseconds, and the cell
it was training resumes from its checkpoint (saved every ``--checkpoint-every`` seconds under
``--checkpoint-dir``, and at the end of the current step on SIGTERM or Ctrl-C, which then stop
the script with status 143 or 130).

    python experiments/search_large.py --method ppo --seed 0 \\
        --cache-path reward_tables/evaluations/large_mnist_cheap.sqlite
    python experiments/search_large.py --method random --seed 0 --cache-path ...

Writes ``OUT_DIR/{method}_seed{seed}/evaluations.csv`` (one row per sampled cell, in order: the
cell, its reward, accuracies, sizes, training seconds, whether the same cell was sampled before in
this search, and where the result came from) and ``summary.json``, each replaced atomically at the
end; while it runs, ``progress.csv`` holds the rows so far (rewritten every 20 cells). ``experiments/report_exp3.py`` turns the folders into the README's figures and tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd

import nas_env  # noqa: F401  (registers the env ids)
from agents.baselines import SEARCHERS
from agents.search_report import search_summary
from nas_env.cli import add_checkpoint_arguments, checkpoint_options, require_dataset
from nas_env.run_checkpoint import stop_on_signals
from nas_env.table_builder import atomic_write_text

LOGGED = ("arch", "arch_key", "validation_accuracy", "test_accuracy", "training_time",
          "trainable_parameters", "cell_parameters", "flops", "failure")


class EvaluationLog(gym.Wrapper):
    """Keep each step's result and print one line per evaluated cell."""

    def __init__(self, env: gym.Env, label: str, budget: int, progress_path: Path | None = None,
                 every: int = 20) -> None:
        super().__init__(env)
        self.rows: list[dict] = []
        self.label, self.budget = label, budget
        self.progress_path, self.every = progress_path, every
        self._seen: set[str] = set()
        self._best = -np.inf

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        source = self.env.unwrapped.last_provenance["source"]
        repeat = info["arch_key"] in self._seen
        self._seen.add(info["arch_key"])
        self._best = max(self._best, float(reward))
        self.rows.append({"evaluation": len(self.rows) + 1, "reward": float(reward),
                          "repeat": repeat, **{k: info[k] for k in LOGGED}, "source": source})
        print(f"[{self.label}] {len(self.rows)}/{self.budget} reward {reward:.2f} "
              f"best {self._best:.2f} ({source}, {info['training_time']:.1f} s)", flush=True)
        if self.progress_path is not None and len(self.rows) % self.every == 0:
            atomic_write_text(self.progress_path, pd.DataFrame(self.rows).to_csv(index=False))
        return obs, reward, terminated, truncated, info


def summarize(rows: pd.DataFrame, method: str, seed: int, args: argparse.Namespace,
              wall: float) -> dict:
    """The figures the README reports for one search, with the run's settings."""
    figures = search_summary(rows)
    return {"method": method, "seed": seed, "budget": args.budget, "blocks": args.blocks,
            "protocol": args.protocol, "dataset": args.dataset, **figures,
            "best_reward": float(figures["best_reward"]),
            "failures": int(rows["failure"].notna().sum()), "wall_seconds_this_run": wall}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, choices=list(SEARCHERS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=400, help="cells sampled (default: %(default)s)")
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--protocol", default="cheap")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--reward", default="val", choices=("val", "param"))
    p.add_argument("--cache-path", default=None, help="evaluation cache (default: the user cache)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads while training")
    p.add_argument("--out-dir", default="runs/exp3")
    add_checkpoint_arguments(p)
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    require_dataset("search_large.py", args.dataset, args.data_root)
    kwargs = {"blocks": args.blocks, "protocol": args.protocol, "dataset": args.dataset,
              "reward": args.reward, "cache_path": args.cache_path, "data_root": args.data_root,
              "threads": args.threads}
    checkpoints = checkpoint_options(args)
    env = gym.make("NASCell-large-v0", **{k: v for k, v in kwargs.items() if v is not None},
                   **checkpoints)
    label = f"{args.method} seed {args.seed}"
    run_dir = Path(args.out_dir) / f"{args.method}_seed{args.seed}"
    logged = EvaluationLog(env, label, args.budget, run_dir / "progress.csv")
    start = time.perf_counter()
    with stop_on_signals(enabled=checkpoints["checkpoint_dir"] is not None):
        SEARCHERS[args.method](logged, budget=args.budget, seed=args.seed)
    wall = time.perf_counter() - start
    env.close()
    rows = pd.DataFrame(logged.rows[: args.budget])
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "evaluations.csv", rows.to_csv(index=False))
    summary = summarize(rows, args.method, args.seed, args, wall)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
