"""Sample efficiency of every searcher on ``NASCell-small-v0``: regret against architectures evaluated.

Each method of :data:`agents.baselines.SEARCHERS` (random search with and without replacement,
regularized evolution, REINFORCE, PPO with the autoregressive LSTM policy) searches the table for
``--cells`` evaluated architectures, under r_val and r_param, once per seed. Cost is counted the
same way for all of them: env steps, one architecture each.

    python experiments/compare_search.py                                  # shipped MNIST table
    python experiments/compare_search.py --dataset fashion_mnist          # the Fashion-MNIST table
    python experiments/compare_search.py --table-path tests/fixtures/small_fixture.csv \\
        --seeds 3 --cells 64 --workers 1                                  # a quick check

Writes, under ``runs/NASCell-small-v0__compare_{dataset}__seeds{n}__{time}/`` (the table file's
name in place of the dataset with ``--table-path``):

- ``curves.csv``: long format, one row per (method, reward, seed, evaluation) with the evaluated
  ``arch`` and its ``value``, the ``best_so_far`` reward and the ``regret`` (the table optimum
  under that reward minus the best so far). A search that stops early (random search without
  replacement once it has seen every cell) keeps its last best for the remaining evaluations.
- ``first_hits.csv``: per run, judged by the cells it sampled (:mod:`agents.search_stats`): the
  evaluation that first sampled the table's best cell and the first that sampled a cell within the
  table's seed noise of it (empty if none did), and lasting convergence (the first batch of 20
  from which every batch is at least 90% one cell) with the cell converged on.
- ``summary.csv`` / ``summary.md``: per method and reward, the quartiles of evaluations needed to
  first sample the optimum, the runs that never did within ``--cells`` (and never sampled a cell
  within noise of it), how many converged and on what, the median final regret, and for random
  search the theoretical expectation. Printed at the end.
- ``regret.png``: median regret and its quartile band per method, one panel per reward.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import gymnasium as gym  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import nas_env  # noqa: E402,F401  (registers the env ids)
from agents.baselines import SEARCHERS  # noqa: E402
from nas_env.cli import add_budget_spelling_of_cells  # noqa: E402
from nas_env.table_builder import atomic_write_text  # noqa: E402
from agents.search_stats import (  # noqa: E402
    QUARTILES, censored_percentile, first_hit, lasting_convergence, random_search_theory)

ENV_ID = "NASCell-small-v0"
REWARD_KINDS = ("val", "param")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("table")
    g.add_argument("--dataset", default="mnist", help="dataset of the shipped table (default: %(default)s)")
    g.add_argument("--protocol", default="fast", help="training protocol of the table (default: %(default)s)")
    g.add_argument("--table-path", default=None, help="an explicit table CSV instead of the shipped one")
    g = p.add_argument_group("comparison")
    g.add_argument("--methods", nargs="+", default=list(SEARCHERS), choices=list(SEARCHERS),
                   help="searchers to run (default: all)")
    g.add_argument("--rewards", nargs="+", default=list(REWARD_KINDS), choices=REWARD_KINDS,
                   help="rewards to search under (default: both)")
    g.add_argument("--cells", type=int, default=200, help="architectures evaluated per search (default: %(default)s)")
    add_budget_spelling_of_cells(g)  # the old spelling, for one version
    g.add_argument("--seeds", type=int, default=20, help="searches per method and reward, seeds 0..n-1 (default: %(default)s)")
    g = p.add_argument_group("run")
    g.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel processes (default: the CPU count)")
    g.add_argument("--out-dir", default="runs", help="folder of the results folder (default: %(default)s)")
    return p


def make_env(args: argparse.Namespace, reward: str) -> gym.Env:
    return gym.make(ENV_ID, dataset=args.dataset, protocol=args.protocol,
                    table_path=args.table_path, reward=reward)


BATCH = 20
"""Evaluations per batch when judging convergence: a PPO iteration's size, for every searcher."""


def optimum_of(env: gym.Env):
    """The table's :class:`~nas_env.benchmark.Optimum` under the env's reward and the space's size."""
    base = env.unwrapped
    return base.table.optimum(base.reward_fn), len(base.table.rewards(base.reward_fn))


def run_one(job: tuple[argparse.Namespace, str, str, int]) -> pd.DataFrame:
    """One search: its per-evaluation rows of ``curves.csv``."""
    args, method, reward, seed = job
    env = make_env(args, reward)
    optimum = optimum_of(env)[0].reward
    trace = SEARCHERS[method](env, args.cells, seed)
    n = len(trace)
    pad = args.cells - n
    best = np.concatenate([trace.best_so_far(), np.full(pad, trace.best_so_far()[-1])])
    return pd.DataFrame({
        "method": method, "reward_kind": reward, "seed": seed,
        "evaluation": np.arange(1, args.cells + 1),
        "arch": list(trace.archs) + [""] * pad,
        "value": np.concatenate([trace.rewards, np.full(pad, np.nan)]),
        "best_so_far": best, "regret": optimum - best,
    })


def one_thread() -> None:
    """Searches are tiny networks: torch's thread pool costs more than it gives, and with several
    workers the pools fight over the cores."""
    import torch

    torch.set_num_threads(1)


def first_hits(curves: pd.DataFrame, optima: dict) -> pd.DataFrame:
    """Per run, by the cells it sampled: the evaluations it made, the first that sampled the
    optimum and the first that sampled a cell within seed noise of it (NaN if none did), and its
    lasting convergence (batch number and cell; NaN / empty if it did not converge)."""
    rows = []
    evaluated = curves[curves["arch"].fillna("") != ""]
    for (method, reward, seed), run in evaluated.groupby(["method", "reward_kind", "seed"],
                                                         sort=False):
        optimum = optima[reward][0]
        archs = run.sort_values("evaluation")["arch"].tolist()
        converged_at, cell = lasting_convergence(archs, BATCH)
        rows.append({
            "method": method, "reward_kind": reward, "seed": seed, "evaluations": len(archs),
            "first_hit": first_hit(archs, [optimum.arch]),
            "first_near_hit": first_hit(archs, optimum.near),
            "convergence_batch": converged_at, "converged_arch": cell or "",
            "converged_on_optimum": cell == optimum.arch,
            "converged_near_optimum": cell in optimum.near if cell else False,
        })
    return pd.DataFrame(rows).astype({"first_hit": float, "first_near_hit": float,
                                      "convergence_batch": float})


def _fmt(value: float, budget: int) -> str:
    return f"> {budget}" if not np.isfinite(value) else f"{value:g}"


def summarise(curves: pd.DataFrame, hits: pd.DataFrame, args: argparse.Namespace,
              optima: dict) -> pd.DataFrame:
    """One row per (method, reward): samples to first find the optimum, measured and in theory."""
    rows = []
    final = curves[curves["evaluation"] == args.cells]
    for (method, reward), group in hits.groupby(["method", "reward_kind"]):
        optimum, size = optima[reward]
        # A run that never found the optimum needs more than the budget: count it as infinite,
        # so a quartile that falls on such runs reads "> budget" instead of flattering the method.
        needed = group["first_hit"].fillna(np.inf).to_numpy()
        q = [censored_percentile(needed, p) for p in QUARTILES]
        row = {
            "method": method, "reward": reward, "runs": len(group),
            "never_found": int(np.isinf(needed).sum()),
            "never_found_near": int(group["first_near_hit"].isna().sum()),
            "converged": int(group["convergence_batch"].notna().sum()),
            "converged_on_optimum": int(group["converged_on_optimum"].sum()),
            "converged_near_optimum": int(group["converged_near_optimum"].sum()),
            "q25": _fmt(q[0], args.cells), "median": _fmt(q[1], args.cells), "q75": _fmt(q[2], args.cells),
            "mean": _fmt(needed.mean(), args.cells),
            "median_final_regret": f"{final[(final.method == method) & (final.reward_kind == reward)].regret.median():.3g}",
        }
        if method.startswith("random"):
            theory = random_search_theory(size, 1, args.cells, replace=method == "random")
            row.update({
                "theory_mean": f"{theory['mean']:.3g}",
                "theory_quartiles": f"{theory['q25']} / {theory['q50']} / {theory['q75']}",
                "theory_never_found": f"{theory['p_never'] * len(group):.2g}",
            })
        else:
            row.update(theory_mean="", theory_quartiles="", theory_never_found="")
        rows.append(row)
    order = {(r, m): i for i, (r, m) in enumerate((r, m) for r in REWARD_KINDS for m in SEARCHERS)}
    return pd.DataFrame(sorted(rows, key=lambda row: order[row["reward"], row["method"]]))


def plot(curves: pd.DataFrame, rewards: list[str], out: Path, title: str) -> None:
    fig, axes = plt.subplots(1, len(rewards), figsize=(6.5 * len(rewards), 4.2), squeeze=False)
    for ax, reward in zip(axes[0], rewards):
        for i, (method, group) in enumerate(curves[curves.reward_kind == reward].groupby("method", sort=False)):
            q = group.groupby("evaluation")["regret"].quantile([0.25, 0.5, 0.75]).unstack()
            ax.plot(q.index, q[0.5], color=f"C{i}", lw=1.6, label=method)
            ax.fill_between(q.index, q[0.25], q[0.75], color=f"C{i}", alpha=0.2, lw=0)
        # Regret spans ~200 points (the r_param penalty) down to tenths and then exactly 0.
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_xlabel("architectures evaluated")
        ax.set_ylabel("regret of best found (accuracy points)")
        ax.set_title(f"r_{reward}: median and quartiles over seeds")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    args = build_parser().parse_args()
    if args.cells < 1 or args.seeds < 1:
        raise SystemExit(f"--cells {args.cells} and --seeds {args.seeds}: both must be >= 1")
    optima = {reward: optimum_of(make_env(args, reward)) for reward in args.rewards}
    table_label = Path(args.table_path).stem if args.table_path else args.dataset
    out = Path(args.out_dir) / f"{ENV_ID}__compare_{table_label}__seeds{args.seeds}__{int(time.time())}"
    out.mkdir(parents=True, exist_ok=True)

    jobs = [(args, method, reward, seed)
            for reward in args.rewards for method in args.methods for seed in range(args.seeds)]
    workers = max(1, min(args.workers, len(jobs)))
    if workers == 1:
        one_thread()
        frames = [run_one(job) for job in jobs]
    else:
        with mp.get_context("spawn").Pool(workers, initializer=one_thread) as pool:
            frames = pool.map(run_one, jobs)
    curves = pd.concat(frames, ignore_index=True)
    hits = first_hits(curves, optima)
    summary = summarise(curves, hits, args, optima)

    curves.to_csv(out / "curves.csv", index=False)
    hits.to_csv(out / "first_hits.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    table_name = args.table_path or f"{args.dataset} ({args.protocol})"
    described = "; ".join(
        f"r_{r}: {o.arch} {o.reward:.3f}, {len(o.near)} cell(s) within the seed noise of "
        f"{o.noise:.3f}" for r, (o, _) in optima.items())
    markdown = (f"Evaluations to first sample the optimum of {table_name}, {args.cells} evaluations per search, "
                f"{args.seeds} seeds per method and reward (optima: {described}). Convergence: "
                f"every batch of {BATCH} from some point on is at least 90% one cell."
                "\n\n" + summary.to_markdown(index=False) + "\n")
    atomic_write_text(out / "summary.md", markdown)
    plot(curves, args.rewards, out / "regret.png", f"{ENV_ID} on {table_name}")
    print(markdown)
    print(f"Results: {out}")


if __name__ == "__main__":
    main()
