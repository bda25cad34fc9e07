"""Runs of ``nas-env train`` as one figure and a paragraph each (``nas-env report``).

A run folder (it holds ``iterations.csv``) or a folder of run folders, such as ``runs``, stands
for its runs. The figure is the paper's Figures 5 and 6: per iteration, the batch's mean reward
with a one-standard-deviation band, and its minimum and maximum (:mod:`agents.plotting`). Each
run whose ``summary.json`` is there gets its paragraph, as ``nas-env train`` printed it at the
end: the best cell, when the search first sampled the table's optimum, whether and on what it
converged, and the greedy cell at the end.

    nas-env report runs                                      # every run under runs/
    nas-env report runs/NASCell-small-v0__ppo_val__* --out val.png
    nas-env report runs/sweep --aggregate --out val_10_seeds.png

``--aggregate`` treats the runs as seeds of one experiment: one curve (at each iteration the
seeds' average of the batch mean, min and max; the band the seeds' average batch standard
deviation) and one sentence of counts over the seeds. ``experiments/plot_rewards.py`` draws the
figure alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def build_parser(prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """The flags of ``nas-env report`` (and ``experiments/plot_rewards.py``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description or __doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding run folders")
    parser.add_argument("--out", default="rewards.png", help="PNG to write (default: rewards.png)")
    parser.add_argument("--aggregate", action="store_true", help="one curve averaged over the runs")
    parser.add_argument("--title", default=None,
                        help="figure title (default: env, experiment and seeds from the run names)")
    parser.add_argument("--xscale", default="auto", choices=["auto", "linear", "log"],
                        help="iteration axis (default: log beyond 200 iterations)")
    parser.add_argument("--ylim", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="y-axis limits, e.g. 95 100 to zoom on the accuracies")
    return parser


def load_summaries(runs: list[Path]) -> list[dict]:
    """The ``summary.json`` of each run that has one, in the order of ``runs``."""
    return [json.loads((run / "summary.json").read_text()) for run in runs
            if (run / "summary.json").is_file()]


def main(argv: list[str] | None = None, prog: str = "nas-env report",
         description: str | None = None, summaries: bool = True) -> Path:
    """Run ``nas-env report`` with the flags ``argv`` (default: the command line): draw the runs'
    figure, print its path and each run's paragraph; returns the figure's path.

    :param argv: the flags, without the command's name.
    :param prog: the name errors and ``--help`` give the command.
    :param description: ``--help``'s text above the flags (default: this module's).
    :param summaries: print the runs' paragraphs (``experiments/plot_rewards.py``: no).
    """
    import matplotlib

    matplotlib.use("Agg")
    from agents.plotting import find_runs, plot_runs

    args = build_parser(prog, description).parse_args(argv)
    runs = find_runs(args.runs)
    out = plot_runs(runs, Path(args.out), args.aggregate, args.title,
                    tuple(args.ylim) if args.ylim else None, args.xscale)
    print(f"figure: {out}")
    if summaries:
        from nas_env.commands.run_summary import aggregate_summaries, describe, describe_aggregate

        found = load_summaries(runs)
        for summary in found:
            print(describe(summary))
        if args.aggregate and len(found) > 1:
            print(describe_aggregate(aggregate_summaries(found)))
        if len(found) < len(runs):
            print(f"{len(runs) - len(found)} of the {len(runs)} runs have no summary.json "
                  "(unfinished or interrupted): drawn, not summarized")
    return out
