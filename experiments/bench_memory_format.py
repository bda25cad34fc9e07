"""Training step time of a protocol's child networks in fp32: contiguous against channels_last.

For ``--cells`` random A_large cells (``--blocks`` blocks, drawn with ``--seed``), builds each
cell's network at the protocol's width (its filters and classifier units) and times ``--steps``
training steps (forward, NLL loss, backward, fused Adam) at the protocol's batch size, once with
contiguous tensors and once with channels_last ones, twice each in turn; it prints each layout's
faster time per step and the speed-up, then the geometric mean over the cells. This is the
measurement behind ``nas_env.training`` training in channels_last on a CPU
(:func:`nas_env.training.memory_format_for`).

``--train-runs K`` then trains the first K of those cells whole, with
:func:`~nas_env.training.train_child` under the protocol on ``--dataset``: seed 0 in each layout,
and seed 1 in channels_last. It prints each run's training time and reward: what the layout does
to a run's time end to end, and to its numbers (a different layout rounds differently, as a
different CPU does), beside what a different seed does.

    python experiments/bench_memory_format.py --protocol loss12k --threads 1
    python experiments/bench_memory_format.py --protocol loss12k --threads 1 --cells 2 --train-runs 2
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import torch

from nas_env import training
from nas_env.child_net import ChildNet
from nas_env.data import DATASETS, load_dataset
from nas_env.hardware import machine
from nas_env.protocols import PROTOCOLS, REWARD_KEYS, get_protocol
from nas_env.spaces import LargeCell
from nas_env.training import resolve_device

from bench_child_training import seconds_per_step  # beside this script, in experiments/


def layout_seconds_per_step(cell: LargeCell, protocol, memory_format: torch.memory_format,
                            device: torch.device, steps: int) -> float:
    """Mean wall time of one fp32 training step of ``cell``'s network at ``protocol``'s width and
    batch size, its weights and images in ``memory_format``."""
    torch.manual_seed(0)
    net = ChildNet(cell, in_channels=1, image_size=28, filters=protocol.filters,
                   fc_units=protocol.fc_units).to(device, memory_format=memory_format)
    x = torch.randn(protocol.batch_size, 1, 28, 28, device=device)
    x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (protocol.batch_size,), device=device)
    return seconds_per_step(net, x, y, "fp32", steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="loss12k", choices=sorted(PROTOCOLS),
                        help="the protocol whose network width and batch size are timed")
    parser.add_argument("--cells", type=int, default=8, help="random cells timed")
    parser.add_argument("--blocks", type=int, default=5, help="blocks per cell")
    parser.add_argument("--seed", type=int, default=0, help="seeds the random cells")
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--train-runs", type=int, default=0,
                        help="train this many of the cells whole in each layout (default 0)")
    parser.add_argument("--dataset", default="mnist", choices=DATASETS,
                        help="the data of --train-runs")
    parser.add_argument("--data-root", default=None,
                        help="dataset folder (default: $NAS_ENV_DATA, else the per-user cache)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.cells < 1 or args.steps < 1 or args.threads < 1:
        parser.error("--cells, --steps and --threads must be at least 1")
    if not 0 <= args.train_runs <= args.cells:
        parser.error(f"--train-runs must be between 0 and --cells ({args.cells}), "
                     f"got {args.train_runs}")

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    protocol = get_protocol(args.protocol)
    rng = np.random.default_rng(args.seed)
    nvec = LargeCell.action_nvec(args.blocks)
    print(f"protocol={protocol.name} filters={protocol.filters} fc_units={protocol.fc_units} "
          f"batch={protocol.batch_size} device={device.type} threads={torch.get_num_threads()} "
          f"steps={args.steps} cells={args.cells} seed={args.seed}")
    print(f"{'cell':<4} {'contiguous ms':>14} {'channels_last ms':>17} {'speed-up':>9}")
    speedups = []
    cells = [LargeCell.from_action([int(rng.integers(n)) for n in nvec], args.blocks)
             for _ in range(args.cells)]
    for k, cell in enumerate(cells):
        times = {torch.contiguous_format: [], torch.channels_last: []}
        for _ in range(2):
            for memory_format in times:
                times[memory_format].append(
                    layout_seconds_per_step(cell, protocol, memory_format, device, args.steps))
        contiguous = min(times[torch.contiguous_format])
        channels_last = min(times[torch.channels_last])
        speedups.append(contiguous / channels_last)
        print(f"{k:<4} {1000 * contiguous:>14.1f} {1000 * channels_last:>17.1f} "
              f"{contiguous / channels_last:>8.2f}x   {cell.to_string()}", flush=True)
    print(f"geometric-mean speed-up of channels_last: {float(np.exp(np.mean(np.log(speedups)))):.2f}x "
          f"(range {min(speedups):.2f}x to {max(speedups):.2f}x)")
    if args.train_runs:
        train_whole(cells[:args.train_runs], protocol, args.dataset, args.data_root, device,
                    args.threads)


def train_whole(cells: list[LargeCell], protocol, dataset: str, data_root, device: torch.device,
                threads: int) -> None:
    """Train each cell under ``protocol``: seed 0 in either layout, seed 1 in channels_last;
    print each run's time and reward."""
    data = load_dataset(dataset, data_root)
    reward_key = REWARD_KEYS[protocol.signal]
    print(f"whole runs: {protocol.name} on {dataset}, reward {reward_key!r}")
    print(f"{'cell':<4} {'layout':<14} {'seed':>4} {'training s':>11} {reward_key:>20}")
    runs = [("contiguous", torch.contiguous_format, 0), ("channels_last", torch.channels_last, 0),
            ("channels_last", torch.channels_last, 1)]
    for k, cell in enumerate(cells):
        for name, memory_format, seed in runs:
            with mock.patch.object(training, "memory_format_for",
                                   lambda device, precision, f=memory_format: f):
                result = training.train_child(cell, data, protocol, seed=seed, device=device,
                                              measure_latency=False, threads=threads)
            print(f"{k:<4} {name:<14} {seed:>4} {result['training_time']:>11.1f} "
                  f"{result[reward_key]:>20.2f}", flush=True)


if __name__ == "__main__":
    main()
