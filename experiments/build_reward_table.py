"""Train A_small cells and write their rewards to ``OUT_DIR/small_<dataset>_<protocol>.csv``.

Resumable: rerun the same command after an interruption and it continues where it stopped,
including the (cell, seed) it was training, from that run's last checkpoint (``--checkpoint-dir``,
saved every ``--checkpoint-every`` seconds). SIGTERM or Ctrl-C saves the run in training at the
end of its current step and exits (status 143 or 130), so stopping it loses no training
(with ``--no-checkpoints`` there is nothing to save to, and they stop it at once).
``OUT_DIR`` defaults to ``~/.local/share/nas_env/reward_tables`` (``$XDG_DATA_HOME``); the
maintainers build the shipped tables with ``--out-dir reward_tables``.

    python experiments/build_reward_table.py --dataset fashion_mnist --protocol fast --seeds 0,1
    python -c "import gymnasium as gym, nas_env; gym.make('NASCell-small-v0', \
        dataset='fashion_mnist', table_path='PATH/small_fashion_mnist_fast.csv')"
"""

from __future__ import annotations

import argparse

import torch

from nas_env.benchmark import RewardTableError
from nas_env.cli import add_checkpoint_arguments, checkpoint_options, parse_int_list
from nas_env.data import DATASETS, DatasetNotFoundError
from nas_env.run_checkpoint import stop_on_signals
from nas_env.spaces import NUM_OPS, InvalidArchitectureError, SmallCell, parse_architecture
from nas_env.table_builder import build_reward_table, default_out_dir
from nas_env.training import PROTOCOLS


def parse_archs(text: str) -> list[SmallCell]:
    """Cell indices (``"0-63"``) or ``;``-separated string forms (``"|conv3x3~0|+|max_pool2x2~1|"``)."""
    if text.startswith("|"):
        cells = [parse_architecture(part) for part in text.split(";")]
        if not all(isinstance(c, SmallCell) for c in cells):
            raise InvalidArchitectureError(f"{text!r}: the builder trains A_small cells only")
        return cells
    return [SmallCell.from_index(i) for i in parse_int_list(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist", choices=sorted(DATASETS), help="dataset to train on")
    parser.add_argument("--protocol", default="fast", choices=sorted(PROTOCOLS), help="training protocol")
    parser.add_argument("--archs", default=f"0-{NUM_OPS**2 - 1}",
                        help="cell indices like 0-63 or 3,17, or ';'-separated string forms (default: all 64)")
    parser.add_argument("--seeds", default="0", help="training seeds, like 0 or 0,1 or 0-4 (default: 0)")
    parser.add_argument("--out-dir", default=None,
                        help=f"folder of the table (default: {default_out_dir()}; the repository's "
                             "shipped tables: reward_tables)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: $NAS_ENV_DATA, else a per-user cache)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"], help="autocast precision")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    add_checkpoint_arguments(parser)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        archs, seeds = parse_archs(args.archs), parse_int_list(args.seeds)
        checkpoints = checkpoint_options(args)
        with stop_on_signals(enabled=checkpoints["checkpoint_dir"] is not None):
            path = build_reward_table(
                dataset=args.dataset, protocol=args.protocol, archs=archs, seeds=seeds,
                out_dir=args.out_dir, data_root=args.data_root, device=args.device,
                precision=args.precision, **checkpoints,
            )
    except (DatasetNotFoundError, RewardTableError, InvalidArchitectureError, ValueError) as err:
        parser.exit(2, f"build_reward_table.py: error: {err}\n")
    print(f"table: {path}")


if __name__ == "__main__":
    main()
