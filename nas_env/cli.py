"""The ``nas-env`` command and the command-line parts its subcommands and the scripts share.

``nas-env COMMAND [FLAGS]`` (installed with the package; ``python -m nas_env`` is the same) runs
one of :data:`COMMANDS`, each a module of :mod:`nas_env.commands` with a ``main(argv, prog)``:

    nas-env train                      # the main job: PPO on the shipped reward table
    nas-env search --method evolution  # one live search of NASCell-large-v0
    nas-env build-table --archs 0-63   # train A_small cells into a reward table
    nas-env report runs                # the runs of nas-env train as a figure and a summary each

The scripts ``experiments/train_ppo.py``, ``search_large.py``, ``build_reward_table.py`` and
``plot_rewards.py`` are thin wrappers over the same modules. ``--budget`` is r_param's budget
``n`` in every command (:func:`add_env_arguments`).
"""

from __future__ import annotations

import sys
from typing import NamedTuple


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


def protocol_name(value) -> str:
    """The name of a :func:`parse_protocol` value: the name itself, or the JSON object's
    ``name`` field."""
    return value if isinstance(value, str) else value["name"]


def parse_json_object(text: str) -> dict:
    """A flag's JSON object (``--env-kwargs '{"blocks": 3}'``); anything else is an argparse error
    that quotes the value and says what is allowed."""
    import argparse
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({err}); write a JSON object, "
                                         "e.g. '{\"blocks\": 3}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object; write one, "
                                         "e.g. '{\"blocks\": 3}'")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (a count of cells, iterations, ...)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; choose a whole number >= 1")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (r_param's budget ``n``)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; choose a finite number > 0, "
                                         "e.g. 150000")
    return value


def add_budget_spelling_of_cells(parser, dest: str = "cells") -> None:
    """``--budget N`` as the old spelling of ``--cells N`` (the number of cells a search
    samples), for one version, in the scripts that had it (``experiments/search_large.py``,
    ``experiments/compare_search.py``): it sets ``dest`` and warns on stderr that ``--budget``
    becomes r_param's budget n there too, as in every ``nas-env`` command."""
    import argparse

    class CellsSpelledBudget(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"{parser.prog}: warning: {option_string} {values} is read as --cells {values}, "
                  "the number of cells to sample; write --cells: in the next version --budget "
                  "is r_param's budget n here too, as in nas-env train and nas-env search",
                  file=sys.stderr)
            setattr(namespace, dest, values)

    parser.add_argument("--budget", type=positive_int, dest=dest, action=CellsSpelledBudget,
                        default=argparse.SUPPRESS, metavar="CELLS",
                        help="deprecated spelling of --cells, for one version")


ENV_KEYWORDS = ("reward", "budget", "budget_scope", "protocol", "dataset", "blocks", "cache_path",
                "data_root", "device")
"""The env keywords :func:`add_env_arguments` adds a flag for (``--budget-scope`` for
``budget_scope``, ``--child-device`` for ``device``, ...)."""

FLAG_OF_KEYWORD = {"device": "child_device"}
"""The env keywords whose flag is named otherwise (``nas-env train --device`` is the policy's)."""


def parse_device(text: str) -> str:
    """``--child-device``'s value: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    import argparse
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; choose auto (CUDA where this machine has it), cpu, cuda or "
            "cuda:N")
    return text


def device_type_of(device: str | None) -> str:
    """The device type (``"cpu"``, ``"cuda"``) a child trains on when asked for ``device``
    (``None`` or ``"auto"``: CUDA where this machine has it), as the evaluation cache keys it."""
    from .training import resolve_device

    return resolve_device(device or "auto").type


def check_child_device(device: str | None, prog: str, flag: str = "--child-device",
                       protocol=None) -> None:
    """Refuse, naming the command and the flag, a device for a training-free ``protocol`` (it
    scores cells on the CPU) or a CUDA device on a machine without one (before anything is
    trained or built)."""
    import torch

    from .protocols import trains_nothing

    if device is not None and trains_nothing(protocol):
        raise SystemExit(f"{prog}: error: {flag}: protocol {protocol!r} is training-free; it "
                         "scores cells on the CPU")
    if device is not None and device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"{prog}: error: {flag} {device}: this machine has no CUDA device "
                         "(torch.cuda.is_available() is False); use cpu or auto")


def add_env_arguments(group, defaults: dict | None = None, budget: bool = True) -> None:
    """The cell-search env's flags that ``nas-env train`` and ``nas-env search`` share:
    ``--reward``, ``--budget`` and ``--budget-scope`` (r_param's budget ``n`` and what it counts,
    in every command), ``--protocol``, ``--dataset``, ``--blocks``, ``--cache-path``,
    ``--data-root`` and ``--child-device`` (the env's ``device``). A flag left at ``None`` keeps
    the env's own default.

    :param group: the parser, or an argument group of it, to add the flags to.
    :param defaults: defaults other than ``None`` for ``protocol``, ``dataset`` or ``blocks``.
    :param budget: add ``--budget`` and ``--budget-scope`` (``experiments/search_large.py`` still
        reads ``--budget`` as its number of cells for one version, so it leaves them out).
    """
    from .data import DATASETS

    d = {"protocol": None, "dataset": None, "blocks": None, **(defaults or {})}

    def default(key: str, env_default: str) -> str:
        return "(default: %(default)s)" if d[key] is not None else f"(default: the env's, {env_default})"

    group.add_argument("--reward", default="val", choices=["val", "param"],
                       help="r_val (validation accuracy) or r_param (-100 at or over the budget n) "
                            "(default: %(default)s)")
    if budget:
        group.add_argument("--budget", type=positive_float, default=None, metavar="N",
                           help="r_param's budget n: a cell whose parameters reach it gets -100 "
                                "(default: the env's, 150,000 cell parameters)")
        group.add_argument("--budget-scope", default=None, choices=["cells", "network"],
                           help="count the cells' or the whole network's parameters against the "
                                "budget (default: the env's, cells)")
    group.add_argument("--protocol", type=parse_protocol, default=d["protocol"],
                       help="training protocol: a name (fast, cheap, loss12k, paper, ...) or a JSON "
                            "object of protocol fields; a table search uses the table's "
                            + default("protocol", "fast for a table, loss12k live"))
    group.add_argument("--dataset", default=d["dataset"], choices=sorted(DATASETS),
                       help="dataset " + default("dataset", "mnist"))
    group.add_argument("--blocks", type=positive_int, default=d["blocks"],
                       help="NASCell-large-v0: blocks per cell " + default("blocks", "5"))
    group.add_argument("--cache-path", default=None,
                       help="live evaluation cache, SQLite (default: the user cache directory); a "
                            "seeded run with the same cache replays its finished evaluations and "
                            "continues")
    group.add_argument("--data-root", default=None,
                       help="live: dataset root (default: $NAS_ENV_DATA, else a per-user cache)")
    group.add_argument("--child-device", type=parse_device, default=None,
                       help="live: where the child networks train: auto (CUDA where this machine "
                            "has it), cpu, cuda or cuda:N (default: the env's, auto); the cache "
                            "serves a result only to the device type it was trained on")


def env_keywords(args) -> dict:
    """The env keywords the flags of :func:`add_env_arguments` set; those left at ``None`` are
    left out, so the env's defaults apply."""
    flags = {key: FLAG_OF_KEYWORD.get(key, key) for key in ENV_KEYWORDS}
    return {key: getattr(args, flag) for key, flag in flags.items()
            if getattr(args, flag, None) is not None}


class Command(NamedTuple):
    """A subcommand of ``nas-env``: the module whose ``main(argv, prog)`` runs it, and one line
    on what it does."""

    module: str
    summary: str


COMMANDS = {
    "train": Command("nas_env.commands.train",
                     "PPO with the LSTM controller, the main job (shipped table, or live)"),
    "search": Command("nas_env.commands.search",
                      "a live search of NASCell-large-v0: ppo, random, evolution, ..."),
    "build-table": Command("nas_env.commands.build_table",
                           "train A_small cells into a reward table"),
    "report": Command("nas_env.commands.report",
                      "runs of nas-env train as one figure and a paragraph each"),
}
"""``nas-env``'s subcommands, by name."""


def _top_parser():
    import argparse

    width = max(len(name) for name in COMMANDS)
    listing = "\n".join(f"  {name:<{width}}  {c.summary}" for name, c in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="nas-env", formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="nas-env [-h] [--version] COMMAND [FLAGS]",
        description="Neural architecture search of convolutional cells: PPO with an\n"
                    "autoregressive LSTM controller, search baselines and reward tables.",
        epilog=f"commands:\n{listing}\n\n'nas-env COMMAND --help' lists a command's flags.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nas_env")
    except PackageNotFoundError:
        return "(not installed)"


def main(argv: list[str] | None = None) -> None:
    """``nas-env COMMAND [FLAGS]``: run the subcommand ``COMMAND`` of :data:`COMMANDS` with
    ``FLAGS``. ``nas-env --help`` lists the commands; no command, or one not in the list, is an
    error (status 2) that names the commands there are."""
    import importlib

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _top_parser()
    allowed = ", ".join(COMMANDS)
    if not argv:
        parser.error(f"name a command: {allowed}")
    head, rest = argv[0], argv[1:]
    if head.startswith("-"):
        if head not in ("-h", "--help", "--version"):
            parser.error(f"{head} is not an option of nas-env itself; name a command first "
                         f"({allowed}), e.g. nas-env train {head}")
        parser.parse_args([head])  # prints the help or the version and exits
    if head not in COMMANDS:
        parser.error(f"{head!r} is not a command; choose from: {allowed}")
    command = importlib.import_module(COMMANDS[head].module)
    command.main(rest, prog=f"nas-env {head}")
