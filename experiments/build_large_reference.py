"""Build the A_large reference set: 5-block cells trained on Fashion-MNIST by a reference protocol.

The cells are listed in ``reward_tables/large_reference_cells.csv`` (``arch``, ``origin``): a
seeded draw of random 5-block cells plus the cells experiment 3 retrained (its 10 best and 10
worst by search reward). ``--write-cells`` makes that list (from experiment 3's search folders,
e.g. the ``runs/exp3`` that ``reproduce_exp3.sh`` writes); the build then trains every listed
cell with each of ``--seeds`` into ``OUT_DIR/large_fashion_mnist_<protocol>.csv`` with its
sidecar, resumably, like ``build_reward_table.py``: a rerun continues where it stopped, the run
in training from its last checkpoint, and SIGTERM or Ctrl-C saves it first.

    python experiments/build_large_reference.py --write-cells --exp3-runs runs/exp3
    python experiments/build_large_reference.py --protocol PROTOCOL --seeds 0,1 --threads 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from agents.search_report import best_cells, load_searches
from nas_env.cli import add_checkpoint_arguments, checkpoint_options, parse_int_list, parse_protocol
from nas_env.data import DatasetNotFoundError
from nas_env.run_checkpoint import stop_on_signals
from nas_env.spaces import LargeCell
from nas_env.table_builder import atomic_write_text, build_reward_table

CELLS = Path("reward_tables/large_reference_cells.csv")
DRAW_SEED = 30


def write_cells(runs: Path, random_cells: int, path: Path) -> None:
    """The seeded draw and experiment 3's best and worst 10 cells, one row each (first origin
    wins where a cell appears twice)."""
    rng = np.random.default_rng(DRAW_SEED)
    nvec = LargeCell.action_nvec(5)
    rows = [(LargeCell.from_action([int(rng.integers(n)) for n in nvec]).to_string(),
             f"random draw (seed {DRAW_SEED}) #{i + 1}") for i in range(random_cells)]
    searches = load_searches(runs)
    for worst in (False, True):
        for rank, arch in enumerate(best_cells(searches, 10, worst=worst)["arch"], start=1):
            rows.append((arch, f"experiment 3 {'worst' if worst else 'best'} #{rank}"))
    table = pd.DataFrame(rows, columns=["arch", "origin"])
    table = table[~table["arch"].map(lambda a: LargeCell.from_string(a).key).duplicated()]
    atomic_write_text(path, table.to_csv(index=False))
    print(f"{path}: {len(table)} cells")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-cells", action="store_true", help=f"write {CELLS} and stop")
    parser.add_argument("--exp3-runs", type=Path, default=Path("runs/exp3"),
                        help="--write-cells: experiment 3's search folders (default: runs/exp3)")
    parser.add_argument("--random", type=int, default=40, help="--write-cells: random cells (default: 40)")
    parser.add_argument("--cells", type=Path, default=CELLS, help=f"the cell list (default: {CELLS})")
    parser.add_argument("--protocol", type=parse_protocol, default="fast",
                        help="a protocol name or its fields as a JSON object (default: fast)")
    parser.add_argument("--seeds", type=parse_int_list, default=[0, 1], help="training seeds (default: 0,1)")
    parser.add_argument("--precision", default="fp32", choices=["auto", "bf16", "fp32"],
                        help="precision (default: fp32, which every CPU runs at full speed)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to train (default: auto, CUDA where the machine has it)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: $NAS_ENV_DATA, else a per-user cache)")
    parser.add_argument("--out-dir", default="reward_tables", help="the table's folder (default: reward_tables)")
    add_checkpoint_arguments(parser)
    args = parser.parse_args()

    if args.write_cells:
        write_cells(args.exp3_runs, args.random, args.cells)
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cells = [LargeCell.from_string(a) for a in pd.read_csv(args.cells)["arch"]]
    options = checkpoint_options(args)
    with stop_on_signals(enabled=options["checkpoint_dir"] is not None):
        try:
            path = build_reward_table("fashion_mnist", args.protocol, cells, args.seeds,
                                      args.out_dir, args.data_root, device=args.device,
                                      precision=args.precision,
                                      progress=True, **options)
        except DatasetNotFoundError as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"table: {path}")


if __name__ == "__main__":
    main()
