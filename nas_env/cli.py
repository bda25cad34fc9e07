"""Parsing of command-line values the scripts share."""

from __future__ import annotations


def parse_int_list(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``."""
    values: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        values.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    return values


def add_checkpoint_dir_argument(parser) -> None:
    """``--checkpoint-dir``: the folder unfinished child training runs save their state to
    (default :func:`nas_env.run_checkpoint.default_checkpoint_dir`)."""
    from .run_checkpoint import default_checkpoint_dir

    parser.add_argument("--checkpoint-dir", default=str(default_checkpoint_dir()),
                        help="where unfinished training runs save their state, to resume from "
                             "after an interrupt (default: %(default)s)")


def add_checkpoint_arguments(parser) -> None:
    """``--checkpoint-dir``, ``--no-checkpoints`` and ``--checkpoint-every``: where and how often
    a long child training run saves its state, so that an interrupted run resumes
    (:mod:`nas_env.run_checkpoint`)."""
    from .run_checkpoint import CHECKPOINT_EVERY

    add_checkpoint_dir_argument(parser)
    parser.add_argument("--no-checkpoints", action="store_true",
                        help="save no state of unfinished runs")
    parser.add_argument("--checkpoint-every", type=float, default=CHECKPOINT_EVERY,
                        help="seconds of training between two saves (default: %(default)s)")


def checkpoint_options(args) -> dict:
    """``checkpoint_dir`` and ``checkpoint_every`` from the arguments
    :func:`add_checkpoint_arguments` added."""
    return {"checkpoint_dir": None if args.no_checkpoints else args.checkpoint_dir,
            "checkpoint_every": args.checkpoint_every}
