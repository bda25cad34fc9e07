"""Plot PPO runs as the paper's Figures 5 and 6: per iteration, the batch's mean reward with a
one-standard-deviation band, and its minimum and maximum.

Each run is a folder written by ``experiments/train_ppo.py`` (it holds ``iterations.csv``); a
folder that holds run folders stands for all of them.

    python experiments/plot_rewards.py runs/NASCell-small-v0__ppo_val__* --out val.png
    python experiments/plot_rewards.py runs/sweep --aggregate --out val_10_seeds.png

``--aggregate`` draws one curve over several seeds: at each iteration the seeds' average of the
batch mean, min and max, and the band is the seeds' average batch standard deviation. Without it,
every run is drawn in its own colour (see :mod:`agents.plotting`). ``nas-env report`` takes the
same flags and also prints each run's summary.
"""

from __future__ import annotations

from nas_env.commands.report import build_parser  # noqa: F401
from nas_env.commands.report import main as report_main


def main() -> None:
    """``nas-env report`` with this script's command line, the figure alone."""
    report_main(prog="plot_rewards.py", description=__doc__, summaries=False)


if __name__ == "__main__":
    main()
