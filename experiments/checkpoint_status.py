"""The training runs in progress: one line per checkpoint under ``--checkpoint-dir``.

    python experiments/checkpoint_status.py --checkpoint-dir runs/checkpoints

For each run that saved a checkpoint (``train_child(checkpoint_dir=...)``, the table builder,
``retrain_cells.py``): its cell, dataset, protocol and seed, the step it reached of its total,
the training seconds so far, seconds per step, and the hours still to go at that pace.
"""

from __future__ import annotations

import argparse

import pandas as pd

from nas_env.cli import add_checkpoint_dir_argument
from nas_env.run_checkpoint import checkpoint_progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_dir_argument(parser)
    args = parser.parse_args()
    rows = checkpoint_progress(args.checkpoint_dir)
    if not rows:
        print(f"no runs in progress under {args.checkpoint_dir}")
        return
    table = pd.DataFrame(rows)
    table["hours_to_go"] = (table["total_steps"] - table["step"]) * table["seconds_per_step"] / 3600
    print(table.drop(columns="file").to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
