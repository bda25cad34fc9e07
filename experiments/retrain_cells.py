"""Retrain the best cells a live search found under another protocol (experiment 3: ``fast``).

Reads the ``evaluations.csv`` of every search folder under ``--runs`` (written by
``search_large.py``), takes the ``--top`` distinct cells by search reward (the best result of
each cell over all searchers), and trains each with ``--protocol`` on the full dataset for every
seed of ``--seeds``. Every finished run goes into the evaluation cache, so an interrupted
retraining resumes by running the same command again.

    python experiments/retrain_cells.py --runs runs/exp3 --top 3 --protocol fast --seeds 0,1 \\
        --precision fp32 --cache-path reward_tables/evaluations/large_mnist_fast.sqlite

Writes ``RUNS/retrained_{protocol}.csv``: one row per (cell, seed) with the validation and test
accuracy, training seconds and parameters, plus the cell's search reward and where it was found.

``--bottom N`` takes the N cells with the lowest search reward instead (written to
``retrained_{protocol}_bottom.csv``): retraining the best and the worst cells with another seed
of the search's own protocol shows whether the search reward's ranking survives a new seed.

    python experiments/retrain_cells.py --runs runs/exp3 --top 10 --protocol cheap --seeds 1
    python experiments/retrain_cells.py --runs runs/exp3 --bottom 10 --protocol cheap --seeds 1

``--ranks 3`` (or ``1,3``) trains only those of the picked cells, to split a long retraining
between processes or machines that share the cache; it writes no CSV, and the same command
without ``--ranks`` then reads every run from the cache and writes it. A run of hours saves its
state every ``--checkpoint-every`` seconds under ``--checkpoint-dir`` and resumes from there;
SIGTERM or Ctrl-C saves it at the end of its current step and exits (status 143 or 130); with
``--no-checkpoints`` or ``--cached-only`` they stop the script at once.
``--cached-only`` trains nothing: it writes the CSV with the runs the cache holds so far and
names the ones still missing, to report a retraining that is under way.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import pandas as pd

from agents.search_report import best_cells, load_searches
from nas_env.cli import add_checkpoint_arguments, checkpoint_options, parse_int_list
from nas_env.evaluators import LiveEvaluator
from nas_env.run_checkpoint import stop_on_signals
from nas_env.spaces import LargeCell
from nas_env.table_builder import atomic_write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/exp3", help="folder of search_large.py's runs")
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--top", type=int, default=3, help="the best N cells (default: %(default)s)")
    pick.add_argument("--bottom", type=int, default=None, help="the worst N cells instead")
    parser.add_argument("--protocol", default="fast")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--seeds", default="0,1", help="training seeds, comma-separated")
    parser.add_argument("--ranks", default=None,
                        help="train only these ranks of the picked cells, like 3 or 1,3; writes no "
                             "CSV (unless --cached-only)")
    parser.add_argument("--cached-only", action="store_true",
                        help="train nothing: write the CSV of the runs the cache already holds")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                        help="auto: the protocol's (fp32 is faster on CPUs without AVX-512 bf16)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--cache-path", default=None)
    add_checkpoint_arguments(parser)
    args = parser.parse_args()

    runs = Path(args.runs)
    worst = args.bottom is not None
    cells = best_cells(load_searches(runs), args.bottom if worst else args.top, worst=worst)
    seeds = [int(s) for s in args.seeds.split(",")]
    ranks = list(range(1, len(cells) + 1)) if args.ranks is None else parse_int_list(args.ranks)
    if not set(ranks) <= set(range(1, len(cells) + 1)):
        parser.error(f"--ranks {args.ranks}: allowed ranks are 1 to {len(cells)}")
    checkpoints = checkpoint_options(args)
    evaluator = LiveEvaluator("large", args.dataset, args.protocol, data_root=args.data_root,
                              train_seeds=seeds, cache=args.cache_path, precision=args.precision,
                              threads=args.threads, **checkpoints)
    rows, missing = [], []
    # A stop request stops only runs that can save their state; without checkpoints, or with
    # nothing to train, Ctrl-C and SIGTERM act at once as usual.
    graceful = checkpoints["checkpoint_dir"] is not None and not args.cached_only
    with stop_on_signals(enabled=graceful), contextlib.closing(evaluator):
        for rank, found in cells.iterrows():
            if rank + 1 not in ranks:
                continue
            cell = LargeCell.from_string(found["arch"])
            for seed in seeds:
                if args.cached_only:
                    result = evaluator.cached_result(cell, seed)
                    if result is None:
                        missing.append(f"cell {rank + 1} seed {seed}")
                        continue
                else:
                    result = evaluator.evaluate_seed(cell, seed)
                rows.append({"picked": "bottom" if worst else "top", "rank": rank + 1, "arch": cell.to_string(), "seed": seed,
                             "validation_accuracy": result["validation_accuracy"],
                             "test_accuracy": result["test_accuracy"],
                             "training_time": result["training_time"],
                             "trainable_parameters": result["trainable_parameters"],
                             "cell_parameters": result["cell_parameters"], "flops": result["flops"],
                             "precision": result["precision"], "failure": result["failure"],
                             "search_reward": found["reward"], "found_by": found["search"],
                             "found_at": int(found["evaluation"])})
                print(f"cell {rank + 1} seed {seed}: validation {result['validation_accuracy']:.2f}, "
                      f"test {result['test_accuracy']:.2f} ({result['source']}, "
                      f"{result['training_time']:.0f} s)", flush=True)
    if missing:
        print(f"not in the cache yet ({len(missing)} of {len(ranks) * len(seeds)} runs): "
              + ", ".join(missing))
    if args.ranks is not None and not args.cached_only:
        return
    out = runs / f"retrained_{args.protocol}{'_bottom' if worst else ''}.csv"
    atomic_write_text(out, pd.DataFrame(rows).to_csv(index=False))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
