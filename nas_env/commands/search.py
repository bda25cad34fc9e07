"""One live search of ``NASCell-large-v0`` (experiment 3) by any searcher (``nas-env search``).

Runs one searcher of :data:`agents.baselines.SEARCHERS` (``ppo``: the autoregressive LSTM policy
with the project's PPO defaults, 20 cells per iteration; ``random``; ``evolution``; ...) for
``--cells`` sampled cells, each trained live under ``--protocol`` and stored in the evaluation
cache; ``--budget`` is r_param's budget n, as in ``nas-env train``. The search is deterministic
for a seed, so an interrupted run resumes by running the same command again: every cell it had
trained comes back from the cache in microseconds, and the cell it was training resumes from its
checkpoint (saved every ``--checkpoint-every`` seconds under ``--checkpoint-dir``, and at the end
of the current step on SIGTERM or Ctrl-C, which then stop the command with status 143 or 130).

    nas-env search --method ppo --seed 0 --cells 400 --cache-path large_mnist_cheap.sqlite
    nas-env search --method random --seed 0 --cells 400 --cache-path large_mnist_cheap.sqlite
    nas-env search --method evolution --reward param --budget 100000
    nas-env search --method ppo --protocol zc-vote --cells 2000 --ppo-settings '{"ent_coef": 0.01}'

Writes ``OUT_DIR/{method}_seed{seed}/evaluations.csv`` (one row per sampled cell, in order: the
cell, its reward, accuracies, sizes, training seconds, whether the same cell was sampled before in
this search, and where the result came from) and ``summary.json``, each replaced atomically at the
end; while it runs, ``progress.csv`` holds the rows so far (rewritten every 20 cells). A PPO
search also writes SB3's log of its updates to ``ppo/progress.csv`` (one row per iteration: the
approximate KL, the epochs run, the entropy coefficient, ...). ``--ppo-settings`` changes
:func:`agents.ppo_search.make_ppo`'s defaults for this search (the settings are in the summary).
``experiments/report_exp3.py`` turns the folders into experiment 3's figures and tables.
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
from nas_env.cli import (add_budget_spelling_of_cells, add_checkpoint_arguments,
                         add_env_arguments, check_child_device, checkpoint_options,
                         device_type_of, env_keywords, parse_json_object, positive_int,
                         require_dataset)
from nas_env.protocols import trains_nothing
from nas_env.run_checkpoint import stop_on_signals
from nas_env.table_builder import atomic_write_text

LOGGED = ("arch", "arch_key", "validation_accuracy", "test_accuracy", "training_time",
          "trainable_parameters", "cell_parameters", "flops", "failure")
"""The ``info`` keys each row of ``evaluations.csv`` keeps."""


class EvaluationLog(gym.Wrapper):
    """Keep each step's result and print one line per evaluated cell.

    :param env: the env to search.
    :param label: the line's prefix, e.g. ``"ppo seed 0"``.
    :param cells: the number of cells the search samples (the line says ``k/cells``).
    :param progress_path: where to write the rows so far every ``every`` cells (``None``: nowhere).
    :param every: how many cells between two writes of ``progress_path``.
    """

    def __init__(self, env: gym.Env, label: str, cells: int, progress_path: Path | None = None,
                 every: int = 20) -> None:
        super().__init__(env)
        self.rows: list[dict] = []
        self.label, self.cells = label, cells
        self.progress_path, self.every = progress_path, every
        self._seen: set[str] = set()
        self._best = -np.inf

    def step(self, action):
        """Step the env, and log the cell it evaluated."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        source = self.env.unwrapped.last_provenance["source"]
        repeat = info["arch_key"] in self._seen
        self._seen.add(info["arch_key"])
        self._best = max(self._best, float(reward))
        self.rows.append({"evaluation": len(self.rows) + 1, "reward": float(reward),
                          "repeat": repeat, **{k: info[k] for k in LOGGED}, "source": source})
        print(f"[{self.label}] {len(self.rows)}/{self.cells} reward {reward:.2f} "
              f"best {self._best:.2f} ({source}, {info['training_time']:.1f} s)", flush=True)
        if self.progress_path is not None and len(self.rows) % self.every == 0:
            atomic_write_text(self.progress_path, pd.DataFrame(self.rows).to_csv(index=False))
        return obs, reward, terminated, truncated, info


def summarize(rows: pd.DataFrame, method: str, seed: int, args: argparse.Namespace,
              wall: float, budget: float | None = None) -> dict:
    """The figures experiment 3 reports for one search, with the run's settings (``cells``: the
    cells sampled; ``budget``: r_param's budget n, ``None`` under r_val; ``ppo_settings``: the
    changes from PPO's defaults, and ``ppo_config`` every setting PPO ran with, ``None`` for
    another method; ``device``: the device type its cells trained on, ``"cpu"`` for a
    training-free protocol; ``sources``: how many results came from training, the cache, ... in
    this run)."""
    figures = search_summary(rows)
    settings, config = getattr(args, "ppo_settings", None) or {}, None
    if method == "ppo":
        from agents.ppo_sweep import ppo_config

        config = ppo_config(settings)
    sources = rows["source"].value_counts() if "source" in rows else pd.Series(dtype=int)
    return {"method": method, "seed": seed, "cells": args.cells, "reward": args.reward,
            "budget": budget, "blocks": args.blocks, "protocol": args.protocol,
            "dataset": args.dataset, "device": "cpu" if trains_nothing(args.protocol)
            else device_type_of(getattr(args, "child_device", None)),
            **figures, "best_reward": float(figures["best_reward"]),
            "failures": int(rows["failure"].notna().sum()), "wall_seconds_this_run": wall,
            "ppo_settings": settings, "ppo_config": config,
            "sources": {str(k): int(v) for k, v in sources.items()}}


def ppo_setting_names() -> list[str]:
    """The keywords ``--ppo-settings`` may set: :func:`agents.ppo_search.make_ppo`'s."""
    from agents.ppo_search import ENTROPY_DECAY_DEFAULTS, PPO_DEFAULTS

    return sorted({*PPO_DEFAULTS, *ENTROPY_DECAY_DEFAULTS, "policy", "feed", "lstm_hidden_size",
                   "fused_adam", "flush_denormal"})


def build_parser(prog: str | None = None, description: str | None = None,
                 legacy_budget: bool = False) -> argparse.ArgumentParser:
    """The flags of ``nas-env search``.

    :param prog: the name errors and ``--help`` give the command.
    :param description: ``--help``'s text above the flags (default: this module's).
    :param legacy_budget: ``experiments/search_large.py``'s parser, whose ``--budget`` is still the
        number of cells (with a warning) for one version; it has no r_param budget flags.
    """
    p = argparse.ArgumentParser(prog=prog, description=description or __doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, choices=list(SEARCHERS), help="the searcher")
    p.add_argument("--seed", type=int, default=0, help="the search's seed (default: %(default)s)")
    p.add_argument("--cells", type=positive_int, default=400,
                   help="cells sampled, repeats included (default: %(default)s)")
    if legacy_budget:
        add_budget_spelling_of_cells(p)
    add_env_arguments(p, defaults={"protocol": "loss12k", "dataset": "mnist", "blocks": 5},
                      budget=not legacy_budget)
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads while training")
    p.add_argument("--ppo-settings", type=parse_json_object, default=None, metavar="JSON",
                   help="--method ppo: changes from PPO's defaults as a JSON object of "
                        "agents.ppo_search.make_ppo keywords, e.g. '{\"ent_coef\": 0.01}'")
    p.add_argument("--out-dir", default="runs/exp3", help="folder of the search folders "
                                                          "(default: %(default)s)")
    add_checkpoint_arguments(p)
    return p


def main(argv: list[str] | None = None, prog: str = "nas-env search",
         description: str | None = None, legacy_budget: bool = False) -> dict:
    """Run ``nas-env search`` with the flags ``argv`` (default: the command line); returns the
    search's summary (also written to ``summary.json`` and printed). The parameters are
    :func:`build_parser`'s."""
    parser = build_parser(prog, description, legacy_budget)
    args = parser.parse_args(argv)
    if args.ppo_settings:
        if args.method != "ppo":
            parser.error(f"--ppo-settings configures --method ppo, not {args.method!r}")
        unknown = sorted(set(args.ppo_settings) - set(ppo_setting_names()))
        if unknown:
            parser.error(f"--ppo-settings: unknown settings {unknown}; allowed: "
                         f"{', '.join(ppo_setting_names())}")
    check_child_device(args.child_device, prog, protocol=args.protocol)
    require_dataset(prog, args.dataset, args.data_root)
    kwargs = {**env_keywords(args), "threads": args.threads}
    checkpoints = ({"checkpoint_dir": None} if trains_nothing(args.protocol)
                   else checkpoint_options(args))
    env = gym.make("NASCell-large-v0", **{k: v for k, v in kwargs.items() if v is not None},
                   **{k: v for k, v in checkpoints.items() if v is not None})
    reward_fn = env.unwrapped.reward_fn
    budget = float(reward_fn.budget) if reward_fn.kind == "param" else None
    label = f"{args.method} seed {args.seed}"
    run_dir = Path(args.out_dir) / f"{args.method}_seed{args.seed}"
    logged = EvaluationLog(env, label, args.cells, run_dir / "progress.csv")
    start = time.perf_counter()
    with stop_on_signals(enabled=checkpoints["checkpoint_dir"] is not None):
        if args.method == "ppo":
            SEARCHERS["ppo"](logged, budget=args.cells, seed=args.seed, log_dir=run_dir / "ppo",
                             **(args.ppo_settings or {}))
        else:
            SEARCHERS[args.method](logged, budget=args.cells, seed=args.seed)
    wall = time.perf_counter() - start
    env.close()
    rows = pd.DataFrame(logged.rows[: args.cells])
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "evaluations.csv", rows.to_csv(index=False))
    summary = summarize(rows, args.method, args.seed, args, wall, budget)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary
