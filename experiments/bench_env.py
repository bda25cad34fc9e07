"""How fast the reward-table envs and the batch query run.

Prints steps per second of ``gym.make("NASCell-small-v0")`` (with Gymnasium's default wrappers,
without the env checker, and the bare env; stepping alone and reset + step) and architectures per
second of ``RewardTable.query_batch``.

    python experiments/bench_env.py                                         # the shipped table
    python experiments/bench_env.py --table-path tests/fixtures/small_fixture.csv
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import gymnasium as gym
import numpy as np

import nas_env  # noqa: F401  (registers the ids)
from nas_env.benchmark import load_table, table_path
from nas_env.hardware import machine


def best_rate(run: Callable[[], None], count: int, repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` calls of ``run`` (which handles ``count``)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table-path", default=None,
                        help="reward table CSV (default: the shipped small_mnist_fast.csv)")
    parser.add_argument("--steps", type=int, default=200_000, help="env steps per timing (default: 200000)")
    parser.add_argument("--batch", type=int, default=1_000_000, help="architectures per batch query")
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure; the best is kept")
    parser.add_argument("--seed", type=int, default=0, help="seeds the actions")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    path = args.table_path or table_path("mnist", "fast")
    print(f"table: {path}")
    rng = np.random.default_rng(args.seed)
    actions = list(rng.integers(0, 8, size=(args.steps, 2)))

    def stepping(env: gym.Env) -> Callable[[], None]:
        def run() -> None:
            step = env.step
            for action in actions:
                step(action)
        return run

    def resetting_and_stepping(env: gym.Env) -> Callable[[], None]:
        def run() -> None:
            reset, step = env.reset, env.step
            for action in actions:
                reset()
                step(action)
        return run

    print(f"{'env':<38}{'seed_mode':<11}{'step only':>14}{'reset + step':>16}   (steps/s)")
    for seed_mode in ("mean", "sample"):
        envs = {
            "gym.make (default wrappers)": gym.make("NASCell-small-v0", table_path=path, seed_mode=seed_mode),
            "gym.make(disable_env_checker=True)": gym.make(
                "NASCell-small-v0", table_path=path, seed_mode=seed_mode, disable_env_checker=True),
            "bare env (.unwrapped)": gym.make("NASCell-small-v0", table_path=path, seed_mode=seed_mode).unwrapped,
        }
        for name, env in envs.items():
            env.reset(seed=args.seed)
            step_only = best_rate(stepping(env), args.steps, args.repeats)
            with_reset = best_rate(resetting_and_stepping(env), args.steps, args.repeats)
            print(f"{name:<38}{seed_mode:<11}{step_only:>14,.0f}{with_reset:>16,.0f}")

    table = load_table(path)
    batch = rng.integers(0, 8, size=(args.batch, 2))
    print(f"\nbatch query of {args.batch:,} architectures (all metrics, architectures/s):")
    for seed_mode in ("mean", "sample"):
        rate = best_rate(lambda: table.query_batch(batch, seed_mode=seed_mode, rng=args.seed),
                         args.batch, args.repeats)
        print(f"  seed_mode={seed_mode:<8}{rate:>16,.0f}")
    rate = best_rate(lambda: table.query_batch(batch, metrics=("validation_accuracy",)),
                     args.batch, args.repeats)
    print(f"  {'validation_accuracy only (mean)':<30}{rate:>16,.0f}")


if __name__ == "__main__":
    main()
