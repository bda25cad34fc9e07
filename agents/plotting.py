"""Figures of PPO searches as the paper's Figures 5 and 6: per iteration, the batch's mean reward
with a one-standard-deviation band, and its minimum and maximum (``experiments/plot_rewards.py``
is the command line).

The band is clipped to the batch's range (a batch with one -100 has a standard deviation larger
than any reward is far from its mean). Runs longer than 200 iterations get a logarithmic
iteration axis, since a search learns in its first few dozen.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

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
    low = (frame["reward_mean"] - frame["reward_std"]).clip(lower=frame["reward_min"])
    high = (frame["reward_mean"] + frame["reward_std"]).clip(upper=frame["reward_max"])
    ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0, label=f"{label} mean +- std")
    ax.plot(x, frame["reward_min"], color=color, lw=0.8, ls="--", label=f"{label} min")
    ax.plot(x, frame["reward_max"], color=color, lw=0.8, ls=":", label=f"{label} max")


def default_title(runs: list[Path]) -> str:
    """``env, experiment, seeds`` from the run folders' names (``env__exp__seed__time``)."""
    parts = [run.name.split("__") for run in runs]
    if not all(len(p) == 4 for p in parts):
        return runs[0].name
    seeds = sorted({int(p[2]) for p in parts if p[2].isdigit()})
    listed = ", ".join(map(str, seeds)) if len(seeds) <= 3 else f"{seeds[0]}-{seeds[-1]}"
    return (f"{parts[0][0]}, {parts[0][1]}, "
            f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({listed})")


def plot_runs(runs: list[Path], out: Path, aggregate: bool = False, title: str | None = None,
              ylim: tuple[float, float] | None = None, xscale: str = "auto") -> Path:
    """Draw ``runs`` into ``out``; ``xscale`` is ``"linear"``, ``"log"`` or ``"auto"`` (log beyond
    200 iterations)."""
    frames = [pd.read_csv(run / ITERATIONS_CSV) for run in runs]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if aggregate:
        stacked = pd.concat(frames)
        mean = stacked.groupby("iteration")[["reward_mean", "reward_std", "reward_min",
                                             "reward_max"]].mean().reset_index()
        _draw(ax, mean, "C0", f"{len(runs)} seeds")
    else:
        for i, (run, frame) in enumerate(zip(runs, frames)):
            seed = run.name.split("__")[2] if "__" in run.name else run.name
            _draw(ax, frame, f"C{i % 10}", f"seed {seed}")
    if xscale == "log" or (xscale == "auto" and max(len(f) for f in frames) > 200):
        ax.set_xscale("log")
    ax.set_xlabel("iteration (batch of sampled architectures)")
    ax.set_ylabel("reward")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title or default_title(runs), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(runs) > 1 and not aggregate else 1, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
