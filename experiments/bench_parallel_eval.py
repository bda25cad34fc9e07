"""Wall time of one batch of live evaluations through each backend, on this machine.

The same 8 A_small cells (indices 0, 8, ..., 56), the ``cheap`` protocol, no cache, through
``inline`` (the driver, 2 torch threads), ``process`` (2 single-thread worker processes) and
``ray`` (a local Ray with 2 CPUs, single-CPU tasks). Each backend first trains a warm-up batch of
2 other cells (workers start, import torch and receive the dataset), timed as the start-up; then
the 8-cell batch is timed. Prints both and the batch's speed-up over ``inline``.

    python experiments/bench_parallel_eval.py                       # all three backends
    python experiments/bench_parallel_eval.py --backends inline process

Run it on an idle machine: another process on the cores changes every figure.
"""

from __future__ import annotations

import argparse
import json
import time

from nas_env.evaluators import LiveEvaluator
from nas_env.hardware import machine
from nas_env.parallel import BACKENDS, RayBackend
from nas_env.spaces import SmallCell

CELLS = [SmallCell.from_index(i) for i in range(0, 64, 8)]
WARM_UP = [SmallCell.from_index(i) for i in (1, 2)]


def evaluator(backend: str, workers: int, data_root: str | None) -> LiveEvaluator:
    if backend == "inline":
        return LiveEvaluator("small", protocol="cheap", cache=False, data_root=data_root,
                             threads=workers)
    if backend == "process":
        return LiveEvaluator("small", protocol="cheap", cache=False, data_root=data_root,
                             threads=1, backend="process", workers=workers)
    return LiveEvaluator("small", protocol="cheap", cache=False, data_root=data_root, threads=1,
                         backend=RayBackend(workers=workers, num_cpus=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--workers", type=int, default=2,
                        help="processes / Ray CPUs, and the inline run's torch threads (default: %(default)s)")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}")

    figures = {}
    for backend in args.backends:
        ev = evaluator(backend, args.workers, args.data_root)
        start = time.perf_counter()
        ev.evaluate_batch(WARM_UP)
        startup = time.perf_counter() - start
        start = time.perf_counter()
        results = ev.evaluate_batch(CELLS)
        wall = time.perf_counter() - start
        ev.close()
        figures[backend] = {"startup_s": startup, "batch_s": wall,
                            "workers_used": len({r["worker"] for r in results}),
                            "mean_training_s": sum(r["training_time"] for r in results) / len(results)}
        print(f"{backend:>7}: warm-up batch (2 cells, start-up included) {startup:6.1f} s; "
              f"8 cells {wall:6.1f} s; {figures[backend]['workers_used']} worker(s); "
              f"mean training time per cell {figures[backend]['mean_training_s']:.1f} s", flush=True)
    if "inline" in figures:
        base = figures["inline"]["batch_s"]
        for backend, fig in figures.items():
            fig["speedup_vs_inline"] = base / fig["batch_s"]
            print(f"{backend:>7}: {fig['speedup_vs_inline']:.2f}x inline")
    if "process" in figures and "ray" in figures:
        print(f"ray / process batch time: {figures['ray']['batch_s'] / figures['process']['batch_s']:.2f}")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
