"""Train A_small cells and write their rewards to ``OUT_DIR/small_<dataset>_<protocol>.csv``
(``nas-env build-table``).

Resumable: rerun the same command after an interruption and it continues where it stopped,
including the (cell, seed) it was training, from that run's last checkpoint (``--checkpoint-dir``,
saved every ``--checkpoint-every`` seconds). SIGTERM or Ctrl-C saves the run in training at the
end of its current step and exits (status 143 or 130), so stopping it loses no training
(with ``--no-checkpoints`` there is nothing to save to, and they stop it at once).
``OUT_DIR`` defaults to ``~/.local/share/nas_env/reward_tables`` (``$XDG_DATA_HOME``); the
maintainers build the shipped tables with ``--out-dir reward_tables``.

    nas-env build-table --dataset fashion_mnist --protocol fast --seeds 0,1
    python -c "import gymnasium as gym, nas_env; gym.make('NASCell-small-v0', \\
        dataset='fashion_mnist', table_path='PATH/small_fashion_mnist_fast.csv')"

``python experiments/build_reward_table.py`` takes the same flags.
"""

from __future__ import annotations

import argparse

from nas_env.cli import add_checkpoint_arguments, checkpoint_options, parse_int_list


def parse_archs(text: str) -> list:
    """Cell indices (``"0-63"``) or ``;``-separated string forms (``"|conv3x3~0|+|max_pool2x2~1|"``)
    as :class:`~nas_env.spaces.SmallCell` objects."""
    from nas_env.spaces import InvalidArchitectureError, SmallCell, parse_architecture

    if text.startswith("|"):
        cells = [parse_architecture(part) for part in text.split(";")]
        if not all(isinstance(c, SmallCell) for c in cells):
            raise InvalidArchitectureError(f"{text!r}: the builder trains A_small cells only")
        return cells
    try:
        indices = parse_int_list(text)
    except ValueError:
        raise ValueError(f"--archs {text!r} is not allowed; write cell indices like 0-63 or 3,17, "
                         "or ';'-separated string forms like |conv3x3~0|+|max_pool2x2~1|") from None
    return [SmallCell.from_index(i) for i in indices]


def build_parser(prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """The flags of ``nas-env build-table`` (and ``experiments/build_reward_table.py``)."""
    from nas_env.data import DATASETS
    from nas_env.spaces import NUM_OPS
    from nas_env.table_builder import default_out_dir
    from nas_env.training import PROTOCOLS

    parser = argparse.ArgumentParser(prog=prog, description=description or __doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return parser


def main(argv: list[str] | None = None, prog: str = "nas-env build-table",
         description: str | None = None):
    """Run ``nas-env build-table`` with the flags ``argv`` (default: the command line): build or
    complete the table, print its path and return it. A missing dataset, a bad table or a bad
    cell is one line, ``PROG: error: ...``, and status 2.

    :param argv: the flags, without the command's name.
    :param prog: the name errors and ``--help`` give the command.
    :param description: ``--help``'s text above the flags (default: this module's).
    """
    import torch

    from nas_env.benchmark import RewardTableError
    from nas_env.data import DatasetNotFoundError
    from nas_env.run_checkpoint import stop_on_signals
    from nas_env.spaces import InvalidArchitectureError
    from nas_env.table_builder import build_reward_table

    parser = build_parser(prog, description)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        archs = parse_archs(args.archs)
        try:
            seeds = parse_int_list(args.seeds)
        except ValueError:
            raise ValueError(f"--seeds {args.seeds!r} is not allowed; write seeds like 0, 0,1 "
                             "or 0-4") from None
        checkpoints = checkpoint_options(args)
        with stop_on_signals(enabled=checkpoints["checkpoint_dir"] is not None):
            path = build_reward_table(
                dataset=args.dataset, protocol=args.protocol, archs=archs, seeds=seeds,
                out_dir=args.out_dir, data_root=args.data_root, device=args.device,
                precision=args.precision, **checkpoints,
            )
    except (DatasetNotFoundError, RewardTableError, InvalidArchitectureError, ValueError) as err:
        parser.exit(2, f"{prog}: error: {err}\n")
    print(f"table: {path}")
    return path
