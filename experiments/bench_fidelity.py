"""How cheap, and how faithful, is a search protocol? Two measurements, printed.

``--small``: train all 64 A_small cells under ``--protocol`` (with each of ``--train-seeds``,
averaged) through the live evaluator (results
go to the evaluation cache, so a rerun costs lookups), export them as the reward table
``reward_tables/small_<dataset>_<protocol>.csv``, and rank them against the shipped ``fast`` table:
Spearman over all 64 cells and Kendall's tau over the fast table's top 16, beside the same figures
between the fast table's own two training seeds (how far the reference agrees with itself).

``--large N``: the seconds one evaluation of each of ``N`` random 5-block A_large cells takes
(seeded; the cache is not used), with the distribution.

    python experiments/bench_fidelity.py --protocol cheap --small --threads 1
    python experiments/bench_fidelity.py --protocol cheap --large 20 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from nas_env.benchmark import RewardTable, table_path
from nas_env.evaluators import LiveEvaluator
from nas_env.spaces import LargeCell, SmallCell
from nas_env.table_compare import rank_agreement
from nas_env.table_builder import export_cache_table

from nas_env.cli import parse_int_list  # noqa: E402  ("0,1", "0-3")


def small(args: argparse.Namespace) -> dict:
    evaluator = LiveEvaluator("small", args.dataset, args.protocol, data_root=args.data_root,
                              cache=args.cache_path, threads=args.threads,
                              train_seeds=args.train_seeds)
    seconds, values = [], []
    for cell in SmallCell.all():
        start = time.perf_counter()
        result = evaluator.evaluate(cell)
        seconds.append(time.perf_counter() - start)
        values.append(result["validation_accuracy"])
        print(f"{cell.paper_name():32s} {result['validation_accuracy']:6.2f} "
              f"{result['source']:8s} {seconds[-1]:6.1f} s", flush=True)
    path = export_cache_table(evaluator.cache, args.dataset, evaluator.protocol, args.out_dir)
    reference = RewardTable(table_path(args.dataset, "fast"))
    seeds = reference.per_seed["validation_accuracy"]
    out = {
        "table": str(path),
        "cheap_vs_fast_mean": rank_agreement(np.array(values),
                                             reference.mean["validation_accuracy"]),
        "fast_seed0_vs_seed1": {"spearman": float(spearmanr(seeds[:, 0], seeds[:, 1])[0])},
        "best_cell": SmallCell.from_index(int(np.argmax(values))).paper_name(),
        "fast_best_cell_rank": int((np.array(values) > values[reference.best("val")["arch_index"]]).sum()) + 1,
    }
    print(json.dumps(out, indent=2))
    return out


def large(args: argparse.Namespace) -> dict:
    evaluator = LiveEvaluator("large", args.dataset, args.protocol, data_root=args.data_root,
                              cache=False, threads=args.threads)
    rng = np.random.default_rng(args.seed)
    nvec = LargeCell.action_nvec(5)
    evaluator.data  # load once, outside the timings
    evaluator.size(LargeCell([(0, 0, 0, 0)]))  # the meta device's one-time start-up
    seconds = []
    for i in range(args.large):
        cell = LargeCell.from_action([int(rng.integers(n)) for n in nvec])
        start = time.perf_counter()
        result = evaluator.evaluate(cell)
        seconds.append(time.perf_counter() - start)
        print(f"{i:2d} {seconds[-1]:6.1f} s  val {result['validation_accuracy']:6.2f}  {cell}", flush=True)
    q = np.percentile(seconds, [0, 25, 50, 75, 100])
    out = {"cells": args.large, "threads": args.threads or torch.get_num_threads(),
           "seconds": {"min": q[0], "q1": q[1], "median": q[2], "q3": q[3], "max": q[4],
                       "mean": statistics.mean(seconds)}}
    print(json.dumps(out, indent=2))
    return out


def parse_protocol(text: str):
    """A protocol name, or a JSON object of :class:`~nas_env.training.Protocol` fields."""
    return json.loads(text) if text.lstrip().startswith("{") else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="cheap", type=parse_protocol,
                        help="the protocol to measure: a name, or its fields as a JSON object, e.g. "
                             "'{\"name\": \"trial\", \"epochs\": 1, ...}' (default: cheap)")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    parser.add_argument("--small", action="store_true", help="rank all 64 A_small cells against the fast table")
    parser.add_argument("--large", type=int, default=0, help="time this many random 5-block A_large cells")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random A_large cells (default: 0)")
    parser.add_argument("--train-seeds", type=parse_int_list, default=[0],
                        help="--small: training seeds per cell, averaged, like 0 or 0,1 (default: 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: $NAS_ENV_DATA, else a per-user cache)")
    parser.add_argument("--cache-path", default=None, help="evaluation cache for --small (default: the user cache)")
    parser.add_argument("--out-dir", default="reward_tables", help="where --small writes its table (default: reward_tables)")
    args = parser.parse_args()
    if not (args.small or args.large):
        parser.error("choose --small, --large N or both")
    if args.small:
        small(args)
    if args.large:
        large(args)


if __name__ == "__main__":
    main()
