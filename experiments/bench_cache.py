"""Time of one evaluation-cache lookup (a stored result) and one miss, on a cache of N rows
(building the run identity and hashing it included).

    python experiments/bench_cache.py --rows 10000
"""

from __future__ import annotations

import argparse
import tempfile
import timeit
from pathlib import Path

import numpy as np

from nas_env.cache import EvaluationCache
from nas_env.hardware import machine
from nas_env.identity import run_identity
from nas_env.spaces import LargeCell
from nas_env.training import PROTOCOLS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="results in the cache (default: %(default)s)")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    protocol = PROTOCOLS["cheap"]
    rng = np.random.default_rng(0)
    nvec = LargeCell.action_nvec(5)
    cells = {c.key: c for c in (LargeCell.from_action([int(rng.integers(n)) for n in nvec])
                                for _ in range(args.rows + 1))}
    stored, missing = list(cells.values())[:-1], list(cells.values())[-1]
    data = {"sha256": "0" * 64, "train_count": 60_000, "test_count": 10_000, "split_seed": 0,
            "validation_fraction": 0.1}

    def identity(cell: LargeCell) -> dict:
        return run_identity(space="large", arch_key=cell.key, dataset="mnist", data=data,
                            split_sizes=[4000, 2000, 2000], protocol=protocol, seed=0,
                            precision="fp32", device_type="cpu")

    with tempfile.TemporaryDirectory() as folder:
        cache = EvaluationCache(Path(folder) / "bench.sqlite")
        for cell in stored:
            cache.put(identity(cell), {
                "arch": cell.to_string(), "arch_key": cell.key, "arch_index": None, "seed": 0,
                "num_seeds": 1, "validation_accuracy": 98.0, "test_accuracy": 98.0,
                "val_curve": [[1.0, 98.0]], "training_time": 15.0, "trainable_parameters": 1,
                "cell_parameters": 1, "flops": 1, "latency_ms": 1.0, "diverged": False,
                "failure": None, "source": "training", "dataset": "mnist", "protocol": "cheap",
                "fidelity": 1.0, "device": "cpu", "precision": "fp32"})
        probe = stored[len(stored) // 2]
        for name, cell in (("hit", probe), ("miss", missing)):
            seconds = min(timeit.repeat(lambda: cache.get(identity(cell)),
                                        number=1000, repeat=5)) / 1000
            print(f"{name}: {seconds * 1e6:.1f} us per lookup ({len(cache)} rows)")


if __name__ == "__main__":
    main()
