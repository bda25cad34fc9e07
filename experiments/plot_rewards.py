"""Plot PPO runs as the paper's Figures 5 and 6: per iteration, the batch's mean reward with a
one-standard-deviation band, and its minimum and maximum.

Each run is a folder written by ``experiments/train_ppo.py`` (it holds ``iterations.csv``); a
folder that holds run folders stands for all of them.

    python experiments/plot_rewards.py runs/NASCell-small-v0__ppo_val__* --out val.png
    python experiments/plot_rewards.py runs/sweep --aggregate --out val_10_seeds.png

``--aggregate`` draws one curve over several seeds: at each iteration the seeds' average of the
batch mean, min and max, and the band is the seeds' average batch standard deviation. Without it,
every run is drawn in its own colour.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

ITERATIONS_CSV = "iterations.csv"


def find_runs(paths: list[str]) -> list[Path]:
    """Run folders named directly, or found one level below a folder of runs."""
    runs: list[Path] = []
    for text in paths:
        path = Path(text)
        if (path / ITERATIONS_CSV).is_file():
            runs.append(path)
        elif path.is_dir():
            runs.extend(sorted(p.parent for p in path.glob(f"*/{ITERATIONS_CSV}")))
    if not runs:
        raise SystemExit(f"no {ITERATIONS_CSV} found in or below: {', '.join(paths)}")
    return runs


def _draw(ax, frame: pd.DataFrame, color, label: str) -> None:
    x = frame["iteration"]
    ax.plot(x, frame["reward_mean"], color=color, lw=1.6, label=f"{label} mean")
    ax.fill_between(x, frame["reward_mean"] - frame["reward_std"],
                    frame["reward_mean"] + frame["reward_std"], color=color, alpha=0.2, lw=0)
    ax.plot(x, frame["reward_min"], color=color, lw=0.8, ls="--", label=f"{label} min")
    ax.plot(x, frame["reward_max"], color=color, lw=0.8, ls=":", label=f"{label} max")


def plot_runs(runs: list[Path], out: Path, aggregate: bool = False, title: str | None = None,
              ylim: tuple[float, float] | None = None) -> Path:
    frames = [pd.read_csv(run / ITERATIONS_CSV) for run in runs]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if aggregate:
        stacked = pd.concat(frames)
        mean = stacked.groupby("iteration")[["reward_mean", "reward_std", "reward_min",
                                             "reward_max"]].mean().reset_index()
        _draw(ax, mean, "C0", f"{len(runs)} seeds")
    else:
        for i, (run, frame) in enumerate(zip(runs, frames)):
            _draw(ax, frame, f"C{i % 10}", run.name.split("__")[2] if "__" in run.name else run.name)
    ax.set_xlabel("iteration (batch of sampled architectures)")
    ax.set_ylabel("reward")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title or runs[0].name.split("__")[0])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(runs) > 1 and not aggregate else 1, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding run folders")
    parser.add_argument("--out", default="rewards.png", help="PNG to write (default: rewards.png)")
    parser.add_argument("--aggregate", action="store_true", help="one curve averaged over the runs")
    parser.add_argument("--title", default=None, help="figure title (default: the env id)")
    parser.add_argument("--ylim", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="y-axis limits, e.g. 95 100 to zoom on the accuracies")
    args = parser.parse_args()
    out = plot_runs(find_runs(args.runs), Path(args.out), args.aggregate, args.title,
                    tuple(args.ylim) if args.ylim else None)
    print(f"figure: {out}")


if __name__ == "__main__":
    main()
