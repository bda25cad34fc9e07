"""Plot PPO runs as the paper's Figures 5 and 6: per iteration, the batch's mean reward with a
one-standard-deviation band, and its minimum and maximum.

Each run is a folder written by ``experiments/train_ppo.py`` (it holds ``iterations.csv``); a
folder that holds run folders stands for all of them.

    python experiments/plot_rewards.py runs/NASCell-small-v0__ppo_val__* --out val.png
    python experiments/plot_rewards.py runs/sweep --aggregate --out val_10_seeds.png

``--aggregate`` draws one curve over several seeds: at each iteration the seeds' average of the
batch mean, min and max, and the band is the seeds' average batch standard deviation. Without it,
every run is drawn in its own colour (see :mod:`agents.plotting`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from agents.plotting import find_runs, plot_runs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding run folders")
    parser.add_argument("--out", default="rewards.png", help="PNG to write (default: rewards.png)")
    parser.add_argument("--aggregate", action="store_true", help="one curve averaged over the runs")
    parser.add_argument("--title", default=None,
                        help="figure title (default: env, experiment and seeds from the run names)")
    parser.add_argument("--xscale", default="auto", choices=["auto", "linear", "log"],
                        help="iteration axis (default: log beyond 200 iterations)")
    parser.add_argument("--ylim", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="y-axis limits, e.g. 95 100 to zoom on the accuracies")
    args = parser.parse_args()
    out = plot_runs(find_runs(args.runs), Path(args.out), args.aggregate, args.title,
                    tuple(args.ylim) if args.ylim else None, args.xscale)
    print(f"figure: {out}")


if __name__ == "__main__":
    main()
