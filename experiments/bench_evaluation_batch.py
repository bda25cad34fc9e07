"""Evaluation speed of a proxy network against the batch size it is evaluated in.

Times ``nas_env.training.accuracy_of`` (the validation and test passes of every training run) on
random 5-block A_large cells at a protocol's width, for each batch size, on the same nets and the
same images, and prints images per second and each size's speed against the first:

    python experiments/bench_evaluation_batch.py --protocol cheap --batch-sizes 256,1000 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from nas_env.child_net import ChildNet
from nas_env.cli import parse_int_list, parse_protocol
from nas_env.hardware import machine
from nas_env.protocols import get_protocol
from nas_env.spaces import LargeCell
from nas_env.training import accuracy_of


def images_per_second(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
                      repeats: int) -> float:
    """The best of ``repeats`` timed passes over ``x`` (after one untimed pass)."""
    accuracy_of(net, x, y, batch_size=batch)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        accuracy_of(net, x, y, batch_size=batch)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", type=parse_protocol, default="cheap",
                        help="the protocol whose network width is timed (default: cheap)")
    parser.add_argument("--batch-sizes", type=parse_int_list, default=[256, 1000],
                        help="evaluation batch sizes, comma-separated (default: 256,1000)")
    parser.add_argument("--cells", type=int, default=5, help="random 5-block cells (seed 0)")
    parser.add_argument("--images", type=int, default=2000, help="images per pass (default: 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per size (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    torch.set_num_threads(args.threads)
    proto = get_protocol(args.protocol)
    rng = np.random.default_rng(0)
    nvec = LargeCell.action_nvec(5)
    cells = [LargeCell.from_action([int(rng.integers(n)) for n in nvec]) for _ in range(args.cells)]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.images, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (args.images,), generator=generator)
    print(f"protocol={proto.name} filters={proto.filters} fc_units={proto.fc_units} "
          f"threads={args.threads} images={args.images}")
    print("cell  " + "  ".join(f"{f'batch {b} img/s':>17}" for b in args.batch_sizes))
    ratios: dict[int, list[float]] = {b: [] for b in args.batch_sizes}
    for i, cell in enumerate(cells):
        torch.manual_seed(0)
        net = ChildNet(cell, filters=proto.filters, fc_units=proto.fc_units)
        speeds = [images_per_second(net, x, y, b, args.repeats) for b in args.batch_sizes]
        for b, speed in zip(args.batch_sizes, speeds):
            ratios[b].append(speed / speeds[0])
        print(f"{i:>4}  " + "  ".join(f"{s:>17.0f}" for s in speeds))
    print("median speed against batch " + str(args.batch_sizes[0]) + ": "
          + ", ".join(f"batch {b} {statistics.median(r):.2f}x" for b, r in ratios.items()))


if __name__ == "__main__":
    main()
