"""Experiment 3's second round: several seeds of each searcher on A_large, then the report.

Does PPO beat random search on ``NASCell-large-v0`` once the reward can be trusted? Each
``(method, seed)`` of ``--methods`` x ``--seeds`` is one ``nas-env search``
(:mod:`nas_env.commands.search`) of ``--cells`` cells under ``--protocol`` (chosen in
``docs/fidelity/``), all sharing one evaluation cache; then ``agents.study_report`` writes the
report. For Fashion-MNIST, a training-free reward and a training-based one:

    python experiments/exp3_study.py --dataset fashion_mnist --protocol zc-vote --cells 2000
    python experiments/exp3_study.py --dataset fashion_mnist --protocol cheap+zc --cells 400 \\
        --workers 2 --threads 1

Resumable: a search whose folder ``OUT/{method}_seed{seed}/`` holds its ``summary.json`` (with
this study's settings) is finished and skipped; any other is run again, and replays every cell it
had evaluated from the cache (a search is deterministic for its seed) before evaluating new ones,
so with the study's cache a rerun trains nothing. Each run of a search adds its wall time to
``attempts.csv`` in its folder; its output goes to ``OUT/logs/``. ``--workers N``: N searches at
once, each in its own process. ``--dry-run`` lists the searches and their state.

Budget rule: at least 2,000 cells per search on a training-free reward, at least 400 on a
training-based one (the default ``--cells``; fewer are allowed, with a warning).

Writes ``OUT/report.md`` (also printed): per searcher the last-quarter mean reward over seeds and
its difference from random search's, paired by seed, with a 95% Student-t interval over seeds;
distinct cells, simulated training and wall hours; every search; the ops of the last quarter; the
best cell of each search; and ``OUT/curves_{dataset}.png``.

The best cells: ``--retrain fast`` then trains each finished search's best cell (its highest
reward, the earliest on a tie) under that protocol on ``--retrain-seeds`` (default 0,1), into
its own cache (``reward_tables/evaluations/large_{dataset}_fast.sqlite``), resumably, and the
report sets them beside the best A_small cell of ``small_{dataset}_fast.csv`` and the paper's best
A_large cell (``agents.study_retrain``); ``--workers N`` trains N of those runs at once. Each
``--small-table`` adds a reference; ``--retrain-control DIR`` first trains that A_small cell the
way the best cells are retrained (their device, precision and threads, on this machine) into a
table in DIR and adds it too, the like-for-like reference where bf16 results move with the CPU.
With ``--report-only`` it trains nothing and names the runs its cache lacks. The report also writes
``OUT/best_cells.csv`` (each finished search's best cell); ``--retrain-cells`` retrains the cells
of such a file and runs no search, which is how ``gpu_exp3_study.sh`` retrains them on a GPU
machine without replaying the searches there.

Devices: the cache serves a result only to the device type it was trained on. A training-based
study's searches train on the CPU unless ``--child-device`` says otherwise, since the shipped
caches hold CPU rows (``auto`` on a GPU machine would train every cell again, on the GPU); a
search folder records its device and is not mixed with another device's. ``--retrain-device``
(default ``auto``: CUDA where there is one) is where the best cells train; with
``--report-only`` it names the device type whose runs are read.

PPO settings: ``--ppo-settings`` (a name of ``agents.ppo_sweep.SWEEP_SETTINGS`` or a JSON object
of ``agents.ppo_search.make_ppo`` keywords) applies to every PPO search of the study; the report
gives every setting PPO ran with (the defaults may change between versions). To choose them,
``--tuning-seeds 100-104`` runs a sweep instead of the study: PPO with each of
``--tuning-settings`` (names, or ``NAME=JSON``) and random search on those seeds, never the
reported ones, under ``OUT/tuning/``, whose ``report.md`` gives each setting's last-quarter mean
against random search's and the epochs and KL of its updates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agents import study_report as sr  # noqa: E402
from agents import study_retrain  # noqa: E402
from agents.study_flags import (fail, file_stem, parse_seeds, parse_settings,  # noqa: E402
                                protocol_of)
from agents.study_jobs import Job, run_jobs, state  # noqa: E402
from agents.ppo_sweep import SWEEP_SETTINGS, ppo_config  # noqa: E402
from nas_env.cli import (check_child_device, device_type_of, parse_device,  # noqa: E402
                         positive_int, protocol_name, require_dataset)
from nas_env.data import DATASETS  # noqa: E402
from nas_env.protocols import trains_nothing  # noqa: E402
from nas_env.tables import RewardTableError  # noqa: E402
from nas_env.tables.files import table_path  # noqa: E402
from nas_env.table_builder import atomic_write_text  # noqa: E402

METHODS = ("ppo", "random", "evolution")
BUDGET_RULE = {"training-free": 2000, "training-based": 400}
"""The least cells per search the study's plan allows, by kind of reward."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="exp3_study.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion_mnist", choices=sorted(DATASETS))
    p.add_argument("--protocol", required=True, help="the reward's protocol (docs/fidelity/)")
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   choices=["ppo", "random", "evolution", "reinforce", "random_norepeat"])
    p.add_argument("--seeds", default="0-4", help="reported seeds (default: %(default)s)")
    p.add_argument("--cells", type=positive_int, default=None,
                   help="cells per search (default: the budget rule, 2000 training-free, 400 "
                        "training-based)")
    p.add_argument("--blocks", type=positive_int, default=5)
    p.add_argument("--cache-path", default=None, help="evaluation cache (default: "
                   "reward_tables/evaluations/large_{dataset}_{protocol}.sqlite)")
    p.add_argument("--out-dir", default=None,
                   help="the study's folder (default: runs/exp3_study/{dataset}_{protocol})")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads per search")
    p.add_argument("--workers", type=positive_int, default=1, help="searches run at once")
    p.add_argument("--child-device", type=parse_device, default=None,
                   help="a training-based reward: where the searches' cells train, auto, cpu, "
                        "cuda or cuda:N (default: cpu, where the shipped caches' rows were "
                        "trained: the cache serves a result only to the device type it was "
                        "trained on, so on a GPU machine auto would train every cell again)")
    p.add_argument("--ppo-settings", default=None, metavar="NAME|JSON",
                   help=f"PPO's settings: {', '.join(SWEEP_SETTINGS)} or a JSON object")
    p.add_argument("--tuning-seeds", default=None, help="run the PPO settings sweep on these "
                   "seeds instead of the study, e.g. 100-104")
    p.add_argument("--tuning-settings", nargs="+", default=list(SWEEP_SETTINGS),
                   metavar="NAME|NAME=JSON", help="settings of the sweep (default: all named)")
    p.add_argument("--retrain", default=None, metavar="PROTOCOL",
                   help="after the searches, train each search's best cell with this training "
                        "protocol (experiment 3: fast) on --retrain-seeds; with --report-only, "
                        "report the runs its cache holds")
    p.add_argument("--retrain-seeds", default="0,1", help="--retrain's training seeds "
                   "(default: %(default)s)")
    p.add_argument("--retrain-precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="--retrain's precision (auto: the protocol's)")
    p.add_argument("--retrain-device", type=parse_device, default="auto",
                   help="where --retrain trains: auto (CUDA where this machine has it), cpu, cuda "
                        "or cuda:N; with --report-only, the device type whose runs to read "
                        "(default: %(default)s)")
    p.add_argument("--retrain-cells", default=None, metavar="CSV",
                   help="retrain the cells of this best_cells.csv (another study's, e.g. to "
                        "retrain them on a GPU machine) and run no search")
    p.add_argument("--retrain-cache", default=None, help="--retrain's evaluation cache (default: "
                   "reward_tables/evaluations/large_{dataset}_{protocol}.sqlite)")
    p.add_argument("--small-table", action="append", help="an A_small table whose best cell, of "
                   "those it holds, the retrained cells are set beside; again for several, such "
                   "as the shipped table and a bf16 control (default: the shipped "
                   "small_{dataset}_{protocol}.csv of --retrain)")
    p.add_argument("--retrain-control", default=None, metavar="DIR",
                   help="also train the best A_small cell of the first --small-table under "
                        "--retrain with the retrained cells' device, precision and threads, into "
                        "a reward table in DIR (a folder of its own), and set them beside it too")
    p.add_argument("--data-root", default=None)
    p.add_argument("--checkpoint-dir", default=None, help="nas-env search's --checkpoint-dir")
    p.add_argument("--no-checkpoints", action="store_true")
    p.add_argument("--report-only", action="store_true", help="run nothing; report what is done")
    p.add_argument("--dry-run", action="store_true", help="list the searches and their state")
    return p


def search_argv(args, method: str, seed: int, parent: Path, setting: dict) -> list[str]:
    """The ``nas-env search`` flags of one search."""
    argv = ["--method", method, "--seed", str(seed), "--cells", str(args.cells), "--reward",
            "val", "--protocol", args.protocol, "--dataset", args.dataset, "--blocks",
            str(args.blocks), "--cache-path", str(args.cache_path), "--out-dir", str(parent)]
    argv += ["--threads", str(args.threads)] if args.threads else []
    argv += ["--child-device", args.child_device] if args.kind == "training-based" else []
    argv += ["--data-root", str(args.data_root)] if args.data_root else []
    argv += ["--checkpoint-dir", args.checkpoint_dir] if args.checkpoint_dir else []
    argv += ["--no-checkpoints"] if args.no_checkpoints else []
    if method == "ppo" and setting:
        argv += ["--ppo-settings", json.dumps(setting)]
    return argv


def plan(args) -> list[Job]:
    """The study's searches, or the sweep's with ``--tuning-seeds``: (method, seed, folder of
    the search folder, PPO's settings) each."""
    if args.tuning:
        runs = [("ppo", seed, args.out / "tuning" / name, setting)
                for name, setting in args.tuning.items() for seed in args.tuning_seeds]
        runs += [("random", seed, args.out / "tuning" / "random", {}) for seed in args.tuning_seeds]
    else:
        # Seed by seed, so that each seed's searches finish together and can be compared in
        # pairs long before the whole study is done.
        runs = [(method, seed, args.out, args.ppo_setting if method == "ppo" else {})
                for seed in args.seeds for method in args.methods]
    expect = {"cells": args.cells, "protocol": args.protocol_value, "dataset": args.dataset,
              "blocks": args.blocks, "reward": "val", "device": args.device_type}
    return [Job(method, seed, parent, search_argv(args, method, seed, parent, setting),
                {**expect, **({"ppo_config": ppo_config(setting)} if method == "ppo" else {})})
            for method, seed, parent, setting in runs]


def retrain(args) -> str:
    """Train each finished search's best cell under ``--retrain`` on every ``--retrain-seeds``
    (with ``--report-only``, read only what the cache holds), write
    ``OUT/retrained_{protocol}.csv``, and return the report's section on them
    (:mod:`agents.study_retrain`). Each run is cached as it finishes; SIGTERM or Ctrl-C saves the
    run in training, so running the study again resumes it."""
    from nas_env.evaluators import LiveEvaluator
    from nas_env.run_checkpoint import default_checkpoint_dir, stop_on_signals

    if args.retrain_cells:
        try:
            best = study_retrain.read_best_cells(Path(args.retrain_cells))
        except (OSError, ValueError) as err:
            fail(f"--retrain-cells: {err}")
    else:
        best = study_retrain.best_cell_of_each(sr.load_study(args.out, args.methods, args.seeds))
    checkpoints = None if args.no_checkpoints else args.checkpoint_dir or str(default_checkpoint_dir())
    evaluator = LiveEvaluator("large", args.dataset, args.retrain_value, data_root=args.data_root,
                              train_seeds=args.retrain_seeds, cache=args.retrain_cache,
                              precision=args.retrain_precision, device=args.retrain_device,
                              threads=args.threads,
                              checkpoint_dir=checkpoints,
                              backend="process" if args.workers > 1 else "inline",
                              workers=args.workers)
    with stop_on_signals(program="exp3_study.py",
                         enabled=checkpoints is not None and not args.report_only), \
            contextlib.closing(evaluator):
        control = None
        if args.retrain_control:  # before the A_large runs: two runs on the same machine
            try:
                control = study_retrain.train_control(
                    study_retrain.best_small_cell(args.small_table[0]), args.dataset,
                    args.retrain_value, args.retrain_seeds, args.retrain_control,
                    data_root=args.data_root, device=args.retrain_device,
                    precision=args.retrain_precision, threads=args.threads,
                    checkpoint_dir=checkpoints, cached_only=args.report_only)
            except ValueError as err:
                fail(f"--retrain-control {args.retrain_control}: {err}")
            print(f"control: {control}" if control else f"--retrain-control: "
                  f"{args.retrain_control} lacks the control's runs; the report leaves it out")
        retrained, missing = study_retrain.retrain_cells(
            best, evaluator, args.retrain_seeds, cached_only=args.report_only,
            log=lambda line: print(line, flush=True))
    atomic_write_text(args.out / f"retrained_{args.retrain_name}.csv", retrained.to_csv(index=False))
    return study_retrain.retrained_markdown(  # each table named in full, relative to the root
        retrained, study_retrain.references(args.small_table, ROOT, control), args.retrain_name,
        missing)


def report(args, jobs: list[Job], retrained: str = "") -> str:
    """Write and return the study's (or the sweep's) ``report.md`` and figure."""
    kind, name, batch = args.kind, args.protocol_name, int(args.ppo_setting.get("n_steps", 20))
    rewarded_by = sr.reward_label(args.protocol_value)
    head = (f"# Experiment 3, second round: {args.dataset}, protocol {name} ({kind}), "
            f"blocks {args.blocks}, {args.cells} cells per search\n\nReward: {rewarded_by}.\n\n")
    if args.cells < BUDGET_RULE[kind]:
        head += (f"**Below the budget rule**: {args.cells} cells per search, where a {kind} reward "
                 f"asks at least {BUDGET_RULE[kind]}.\n\n")
    missing = [] if args.retrain_cells else [
        f"{j.parent.name}/{j.name}" for j in jobs if state(j) != "finished"]
    if missing:
        head += f"Not finished (left out below): {', '.join(missing)}.\n\n"
    if args.tuning:
        text = head + sr.sweep_markdown(args.out / "tuning", args.tuning, args.tuning_seeds)
        atomic_write_text(args.out / "tuning" / "report.md", text)
        return text
    searches = sr.load_study(args.out, args.methods, args.seeds)
    if searches:
        atomic_write_text(args.out / "best_cells.csv",
                          study_retrain.best_cell_of_each(searches).to_csv(index=False))
        figure = sr.plot_study(
            searches, args.out / f"curves_{args.dataset}.png",
            f"A_large (blocks {args.blocks}), {args.dataset}, {name}: {args.cells} cells per search",
            f"reward: {rewarded_by}",
            batch)
        if any(method == "ppo" for method, _ in searches):
            head += f"PPO's settings: `{json.dumps(ppo_config(args.ppo_setting))}`.\n\n"
    text = head + (sr.study_markdown(searches, args.out, figure.name) if searches
                   else f"The searches ran elsewhere; their best cells are those of "
                        f"`{args.retrain_cells}`.\n" if args.retrain_cells
                   else "No search has finished yet.\n") + ("\n" + retrained if retrained else "")
    atomic_write_text(args.out / "report.md", text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the study (or the sweep) with the flags ``argv``; returns the exit status (1 if a
    search failed)."""
    args = build_parser().parse_args(argv)
    value = args.protocol_value = protocol_of(args.protocol)
    kind = args.kind = "training-free" if trains_nothing(value) else "training-based"
    args.cells = args.cells or BUDGET_RULE[kind]
    if kind == "training-free":
        if args.child_device is not None:
            fail(f"--child-device: protocol {args.protocol!r} is training-free; it scores cells "
                 "on the CPU")
        args.device_type = "cpu"
    else:
        args.child_device = args.child_device or "cpu"
        args.device_type = device_type_of(args.child_device)
    args.protocol_name = protocol_name(value)
    stem = file_stem(args.dataset, value)
    args.cache_path = args.cache_path or ROOT / "reward_tables" / "evaluations" / f"large_{stem}.sqlite"
    args.out = Path(args.out_dir or f"runs/exp3_study/{stem}")
    args.seeds = parse_seeds(args.seeds, "--seeds")
    args.ppo_setting = parse_settings(args.ppo_settings)[1] if args.ppo_settings else {}
    args.tuning = None
    if args.tuning_seeds:
        args.tuning_seeds = parse_seeds(args.tuning_seeds, "--tuning-seeds")
        if set(args.tuning_seeds) & set(args.seeds):
            fail(f"--tuning-seeds {args.tuning_seeds} overlap the reported --seeds {args.seeds}; "
                 "tune on seeds that are not reported")
        args.tuning = dict(parse_settings(text) for text in args.tuning_settings)
        if "random" in args.tuning:
            fail("'random' names the sweep's random-search folder; name the setting otherwise")
    if args.retrain_cells and not args.retrain:
        fail("--retrain-cells names the cells --retrain trains; give --retrain PROTOCOL too")
    if args.retrain:
        if args.tuning:
            fail("--retrain retrains the study's best cells; a sweep (--tuning-seeds) has none")
        value = args.retrain_value = protocol_of(args.retrain, "--retrain", training_only=True)
        args.retrain_name = protocol_name(value)
        args.retrain_seeds = parse_seeds(args.retrain_seeds, "--retrain-seeds")
        args.retrain_cache = args.retrain_cache or (
            ROOT / "reward_tables" / "evaluations" / f"large_{file_stem(args.dataset, value)}.sqlite")
        if args.small_table is None:
            try:
                args.small_table = [str(table_path(args.dataset, args.retrain_name))]
            except FileNotFoundError as err:
                fail(f"--retrain {args.retrain}: no A_small table to set its cells beside ({err}); "
                     "name one with --small-table")
        for table in args.small_table:  # before any training: the report reads them at the end
            try:
                study_retrain.best_small_cell(table)
            except (OSError, RewardTableError) as err:
                fail(f"--small-table {table}: {err}")
    if args.cells < BUDGET_RULE[kind]:
        print(f"exp3_study.py: warning: --cells {args.cells} is below the budget rule for a {kind} "
              f"reward ({BUDGET_RULE[kind]})", file=sys.stderr)
    jobs = plan(args)
    states = {job.folder: state(job) for job in jobs}
    clash = [f"{folder}: {what}" for folder, what in states.items() if what.startswith("holds")]
    if clash:
        fail("these folders hold searches with other settings; choose another --out-dir:\n  "
             + "\n  ".join(clash))
    todo = [job for job in jobs if states[job.folder] != "finished"]
    if args.dry_run:
        print("\n".join(f"{folder}: {what}" for folder, what in states.items()))
        return 0
    if not args.report_only:
        require_dataset("exp3_study.py", args.dataset, args.data_root)
        if kind == "training-based" and not args.retrain_cells:
            check_child_device(args.child_device, "exp3_study.py")
        if args.retrain:
            check_child_device(args.retrain_device, "exp3_study.py", "--retrain-device")
        if args.retrain_cells:
            print(f"retraining the cells of {args.retrain_cells}; no search is run", flush=True)
        else:
            print(f"{len(jobs) - len(todo)} of {len(jobs)} searches finished; running "
                  f"{len(todo)}", flush=True)
    failed = [] if args.report_only or args.retrain_cells else run_jobs(todo, args.workers)
    retrained = retrain(args) if args.retrain else ""
    atomic_write_text(args.out / "study.json", json.dumps(
        {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, indent=2) + "\n")
    print(report(args, jobs, retrained))
    if failed:
        print(f"exp3_study.py: failed: {', '.join(failed)} (see logs/ beside them)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
