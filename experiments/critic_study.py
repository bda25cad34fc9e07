"""Does the critic help? PPO on the shipped table under several baseline settings, many seeds.

The observation of a one-step NAS env is constant, so the critic's value is one number for the
whole batch, and SB3's advantage normalisation subtracts the batch mean anyway. This study runs
each setting for ``--seeds`` seeds under r_val and r_param, ``--iterations`` iterations each, and
judges every run by the cells it sampled (:mod:`agents.search_stats`):

``today``       the project's defaults (``vf_coef=0.5``, ``max_grad_norm=inf``, advantages normalised)
``no_critic``   ``vf_coef=0`` and SB3's default gradient clipping (``max_grad_norm=0.5``) restored
``critic_only`` advantages not normalised: the critic's value is the only baseline
``no_value_loss`` ``vf_coef=0`` with today's unclipped gradients: does the value loss touch the actor?

    python experiments/critic_study.py --seeds 20 --iterations 200 --workers 2

Resumable: ``OUT/runs.csv`` gains each run's row as it finishes, and a rerun skips the runs it
already holds. Writes ``OUT/runs.csv`` (one row per run) and ``OUT/summary.md`` (per setting and reward: runs
that converged on the optimum / within seed noise of it, the median convergence iteration, runs
whose greedy cell at the end is the optimum / within noise, the median greedy regret), and prints
the summary.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd

import nas_env  # noqa: F401  (registers the env ids)
from agents.callbacks import SearchProgressCallback
from agents.ppo_search import make_ppo
from nas_env.spaces import SmallCell, parse_architecture
from nas_env.table_builder import atomic_write_text

SETTINGS = {
    "today": {},
    "no_critic": {"vf_coef": 0.0, "max_grad_norm": 0.5},
    "critic_only": {"normalize_advantage": False},
    "no_value_loss": {"vf_coef": 0.0},
}


def run_one(job: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    setting, reward, seed, iterations, env_kwargs = job
    env = gym.make("NASCell-small-v0", reward=reward, **env_kwargs)
    base = env.unwrapped
    optimum = base.table.optimum(base.reward_fn)
    model = make_ppo(env, seed, **SETTINGS[setting])
    with tempfile.TemporaryDirectory() as tmp:
        callback = SearchProgressCallback(Path(tmp) / "it.csv", optimum,
                                          parse_architecture(optimum.arch).to_action(),
                                          progress=False, total_iterations=iterations)
        start = time.perf_counter()
        model.learn(total_timesteps=iterations * 20, callback=callback)
        wall = time.perf_counter() - start
    greedy, _ = model.predict(model.env.reset(), deterministic=True)
    greedy_arch = base.decode(greedy[0]).to_string()
    values = base.table.rewards(base.reward_fn)
    summary = callback.summary()
    return {"setting": setting, "reward": reward, "seed": seed,
            "first_hit_iteration": summary["first_hit_iteration"],
            "convergence_iteration": summary["convergence_iteration"],
            "converged_arch": summary["converged_arch"],
            "converged_on_optimum": summary["converged_on_optimum"],
            "converged_near_optimum": summary["converged_near_optimum"],
            "greedy_arch": greedy_arch, "greedy_is_optimum": greedy_arch == optimum.arch,
            "greedy_near_optimum": greedy_arch in optimum.near,
            "greedy_regret": float(optimum.reward - values[SmallCell.from_string(greedy_arch).index]),
            "wall_seconds": wall}


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (setting, reward), group in runs.groupby(["setting", "reward"], sort=False):
        conv = group["convergence_iteration"].dropna()
        rows.append({
            "setting": setting, "reward": reward, "seeds": len(group),
            "converged on optimum": int(group["converged_on_optimum"].sum()),
            "converged within noise": int(group["converged_near_optimum"].sum()),
            "convergence iteration (median)": float(conv.median()) if len(conv) else np.nan,
            "greedy = optimum": int(group["greedy_is_optimum"].sum()),
            "greedy within noise": int(group["greedy_near_optimum"].sum()),
            "greedy regret (median)": float(group["greedy_regret"].median()),
        })
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--rewards", nargs="+", default=["val", "param"], choices=["val", "param"])
    parser.add_argument("--table-path", default=None, help="a table instead of the shipped one")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out-dir", default="runs/critic_study")
    args = parser.parse_args()

    env_kwargs = {"table_path": args.table_path} if args.table_path else {}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.csv"
    done = pd.read_csv(path).to_dict("records") if path.exists() else []
    have = {(r["setting"], r["reward"], int(r["seed"])) for r in done}
    jobs = [(s, r, seed, args.iterations, env_kwargs)
            for s in args.settings for r in args.rewards for seed in range(args.seeds)
            if (s, r, seed) not in have]
    print(f"{len(done)} runs in {path}, {len(jobs)} to run", flush=True)
    rows = list(done)

    def keep(result: dict) -> None:
        rows.append(result)
        atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))

    if args.workers == 1:
        for job in jobs:
            keep(run_one(job))
    else:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for result in pool.imap_unordered(run_one, jobs):
                keep(result)
    order = {name: i for i, name in enumerate(SETTINGS)}
    runs = pd.DataFrame(rows)
    runs = runs[runs["setting"].isin(args.settings) & runs["reward"].isin(args.rewards)
                & (runs["seed"] < args.seeds)]
    runs = runs.sort_values(["setting", "reward", "seed"], key=lambda c: c.map(order)
                            if c.name == "setting" else c)
    table = summarise(runs).to_markdown(index=False, floatfmt=".3g")
    atomic_write_text(out / "summary.md", table + "\n")
    print(table)


if __name__ == "__main__":
    main()
