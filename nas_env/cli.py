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


def require_dataset(prog: str, dataset: str | None, data_root=None) -> None:
    """Exit with one line (status 1) if ``dataset``'s files are not under the data root (where
    no root was named: nor downloadable into the per-user cache), before a script creates
    anything: a live search would otherwise fail at its first training, with a traceback and a
    run folder left behind."""
    from .data import DatasetNotFoundError, known_data_record, load_dataset

    dataset = dataset or "mnist"
    try:
        known_data_record(dataset, data_root, lambda: load_dataset(dataset, data_root))
    except DatasetNotFoundError as err:
        raise SystemExit(f"{prog}: error: {err}") from None


def parse_protocol(text: str):
    """``--protocol``'s value: a protocol name, or a JSON object of
    :class:`~nas_env.protocols.Protocol` fields."""
    import json

    return json.loads(text) if text.lstrip().startswith("{") else text
