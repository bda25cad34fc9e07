"""Experiment 3's figures and tables, from the searches ``search_large.py`` wrote.

    python experiments/report_exp3.py --runs runs/exp3 --figures docs/figures

Reads ``RUNS/{method}_seed{seed}/evaluations.csv`` (and ``RUNS/retrained_fast.csv`` when
``retrain_cells.py`` has written it) and writes:

- ``FIGURES/exp3_ppo_rewards.png``: PPO's reward per iteration of 20 cells, mean with a one-std
  band, min and max (the paper's Figure 5 style);
- ``FIGURES/exp3_searchers.png``: best so far and the mean of each block of 20 cells against
  the number of cells evaluated, one line per searcher;
- ``FIGURES/exp3_best_cell.png``: the best cell's blocks (``draw_cell.py``);

and prints, as Markdown: per searcher the cells sampled, distinct cells, repeats (samples of a cell
the search had already evaluated: a cache lookup each), the simulated training time, the mean
reward of the first and the last 100 cells, the best cell, and the entropy of the ops chosen in
the last 100 cells (``op_entropy``: how far a searcher has moved from uniform choices); how far
each searcher's last 100 cells lie above random search's (``mean_difference``) and which ops they
chose (``op_counts``); PPO's
reward and op entropy per iteration; the five best cells over all
searches; the retrained cells per seed, and their means beside the paper's A_large cell
(Table 3) and the shipped A_small table's best cell; and, when ``retrain_cells.py`` has retrained the best and
the worst cells with a second ``cheap`` seed (``retrained_cheap.csv``,
``retrained_cheap_bottom.csv``), their mean rewards under both seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from agents.search_report import (  # noqa: E402
    ITERATION, best_cells, load_searches, mean_difference, op_counts, op_entropy, per_iteration,
    search_summary)
from agents.study_retrain import PAPER_A_LARGE, best_small_cell  # noqa: E402
from nas_env.benchmark import table_path  # noqa: E402
from nas_env.drawing import draw_cell  # noqa: E402
from nas_env.spaces import LargeCell, SmallCell  # noqa: E402

LABELS = {"ppo": "PPO (autoregressive LSTM)", "random": "random search",
          "evolution": "regularized evolution", "reinforce": "REINFORCE"}


def label(name: str) -> str:
    """A search folder's name (``{method}_seed{seed}``) as a reader's label of its method."""
    method = name.rsplit("_seed", 1)[0]
    return LABELS.get(method, method)


def seed_of(name: str) -> int:
    """The seed in a search folder's name (``{method}_seed{seed}``)."""
    return int(name.rsplit("_seed", 1)[1])


def plot_ppo(frame: pd.DataFrame, out: Path) -> None:
    stats = per_iteration(frame["reward"].to_numpy())
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(stats["iteration"], stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                    alpha=0.25, label="mean +- std")
    ax.plot(stats["iteration"], stats["mean"], label="mean")
    ax.plot(stats["iteration"], stats["max"], "--", linewidth=1, label="max")
    ax.plot(stats["iteration"], stats["min"], ":", linewidth=1, label="min")
    ax.set_xlabel(f"PPO iteration ({ITERATION} cells each)")
    ax.set_ylabel("reward: cheap validation accuracy (%)")
    low = np.percentile(frame["reward"], 2)
    ax.set_ylim(max(0, low - 1), frame["reward"].max() + 0.5)
    ax.set_title("Experiment 3: PPO on A_large (5 blocks, cheap protocol)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_searchers(searches: dict[str, pd.DataFrame], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    lows = []
    for name, frame in searches.items():
        rewards = frame["reward"].to_numpy()
        line, = ax.plot(np.arange(1, len(rewards) + 1), np.maximum.accumulate(rewards),
                        label=f"{name}: best so far")
        stats = per_iteration(rewards)
        ax.plot(stats["iteration"] * ITERATION, stats["mean"], "o--", markersize=3,
                color=line.get_color(), linewidth=1, label=f"{name}: mean of each {ITERATION}")
        lows.append(stats["mean"].min())
    ax.set_xlabel("cells evaluated")
    ax.set_ylabel("reward: cheap validation accuracy (%)")
    top = max(frame["reward"].max() for frame in searches.values())
    ax.set_ylim(min(lows) - 1, top + 0.3)
    ax.set_title("Experiment 3: searchers on A_large at the same budget")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def reseed_summary(runs: Path, evaluations: pd.DataFrame) -> pd.DataFrame | None:
    """From ``retrained_cheap.csv`` and ``retrained_cheap_bottom.csv`` (``retrain_cells.py
    --top/--bottom N --protocol cheap`` with seeds other than the search's): per group the mean
    search reward and the mean validation accuracy under the new seed, beside every sampled cell's
    mean search reward; None unless both files exist."""
    paths = [runs / "retrained_cheap.csv", runs / "retrained_cheap_bottom.csv"]
    if not all(p.exists() for p in paths):
        return None
    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    rows = [{"cells": f"{group} {part['arch'].nunique()} by search reward",
             "searches": ", ".join(sorted(set(part["found_by"]))),
             "mean search reward": part["search_reward"].mean(),
             "new seeds": ", ".join(str(s) for s in sorted(set(part["seed"]))),
             "mean validation, new seed": part["validation_accuracy"].mean()}
            for group, part in frame.groupby("picked", sort=False)]
    rows.append({"cells": f"all {len(evaluations)} sampled", "searches": ", ".join(
                 sorted(set(evaluations["search"]))),
                 "mean search reward": evaluations["reward"].mean(), "new seeds": "",
                 "mean validation, new seed": None})
    table = pd.DataFrame(rows)
    table["mean validation, new seed"] = [
        "" if v is None or pd.isna(v) else f"{v:.2f}" for v in table["mean validation, new seed"]]
    return table


def against_paper_and_small(retrained: pd.DataFrame, small_table: Path) -> pd.DataFrame:
    """Each retrained cell's mean over its seeds beside the paper's best A_large cell (Table 3)
    and the best A_small cell (by mean validation accuracy) of the reward table ``small_table``:
    validation and test accuracy, seeds, multiply-accumulates of one image, precision."""
    best_rows = best_small_cell(small_table)
    best = best_rows["arch"].iloc[0]
    rows = [{"cell": "paper's best A_large cell (Table 3)", "validation": PAPER_A_LARGE[0],
             "test": PAPER_A_LARGE[1], "seeds": "", "flops": "", "precision": ""},
            {"cell": f"best A_small cell {SmallCell.from_string(best).paper_name()} "
                     f"({small_table.name})",
             "validation": best_rows["validation_accuracy"].mean(),
             "test": best_rows["test_accuracy"].mean(),
             "seeds": ", ".join(str(s) for s in sorted(best_rows["seed"])),
             "flops": f"{int(best_rows['flops'].iloc[0]):,}",
             "precision": ", ".join(sorted(set(best_rows["precision"])))}]
    for rank, runs in retrained.groupby("rank"):
        rows.append({"cell": f"A_large rank {rank} (cheap reward {runs['search_reward'].iloc[0]:.2f})",
                     "validation": runs["validation_accuracy"].mean(),
                     "test": runs["test_accuracy"].mean(),
                     "seeds": ", ".join(str(s) for s in sorted(runs["seed"])),
                     "flops": f"{int(runs['flops'].iloc[0]):,}" if "flops" in runs else "",
                     "precision": ", ".join(sorted(set(runs["precision"])))})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """``table`` as Markdown, floats to ``floatfmt`` and integer columns as integers (tabulate
    would print them as floats when every column is numeric)."""
    formats = tuple("g" if pd.api.types.is_integer_dtype(dtype) else floatfmt
                    for dtype in table.dtypes)
    return table.to_markdown(index=False, floatfmt=formats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/exp3")
    parser.add_argument("--figures", default="docs/figures")
    args = parser.parse_args()
    runs, figures = Path(args.runs), Path(args.figures)
    figures.mkdir(parents=True, exist_ok=True)

    evaluations = load_searches(runs)
    searches = {name: frame.reset_index(drop=True)
                for name, frame in evaluations.groupby("search", sort=False)}
    rows = []
    for name, frame in searches.items():
        rows.append({"searcher": label(name), "seed": seed_of(name),
                     **search_summary(frame),
                     "op_entropy_last": op_entropy(frame["arch"].tail(100))})
    print("## Searches\n")
    print(markdown(pd.DataFrame(rows)))
    baseline = [frame for name, frame in searches.items() if name.startswith("random_")]
    if baseline:
        print("\n## Mean reward of the last 100 cells, minus random search's (95% interval)\n")
        differences = []
        for name, frame in searches.items():
            if not name.startswith("random_"):
                differences.append({"searcher": label(name), "seed": seed_of(name),
                             **mean_difference(frame["reward"].tail(100),
                                               baseline[0]["reward"].tail(100))})
        print(markdown(pd.DataFrame(differences)))
    print("\n## Ops chosen in the last 100 cells (both op slots of every block)\n")
    counts = {}
    for name, frame in searches.items():
        counts[f"{label(name)} (seed {seed_of(name)})"] = op_counts(frame["arch"].tail(100))
    print(markdown(pd.DataFrame(counts).rename_axis("op").reset_index()))
    ppo = [frame for name, frame in searches.items() if name.startswith("ppo_")]
    if ppo:
        print("\n## PPO per iteration\n")
        stats = per_iteration(ppo[0]["reward"].to_numpy())
        archs = ppo[0]["arch"].to_numpy()
        stats["op_entropy"] = [op_entropy(archs[(i - 1) * ITERATION: i * ITERATION])
                               for i in stats["iteration"]]
        print(markdown(stats))
        plot_ppo(ppo[0], figures / "exp3_ppo_rewards.png")
    plot_searchers({label(name): frame for name, frame in searches.items()},
                   figures / "exp3_searchers.png")

    top = best_cells(evaluations, 5)
    print("\n## Five best cells (cheap reward; flops: multiply-accumulates of one image)\n")
    print(markdown(top[["arch", "reward", "trainable_parameters", "cell_parameters", "flops",
                        "search", "evaluation"]]))
    fig = draw_cell(LargeCell.from_string(top.loc[0, "arch"]),
                    f"Best A_large cell found (cheap reward {top.loc[0, 'reward']:.2f})")
    fig.savefig(figures / "exp3_best_cell.png", dpi=120)
    plt.close(fig)

    retrained = runs / "retrained_fast.csv"
    if retrained.exists():
        print("\n## Retrained with the fast protocol\n")
        retrained = pd.read_csv(retrained)
        print(markdown(retrained[["rank", "arch", "seed", "validation_accuracy", "test_accuracy",
                                  "training_time", "trainable_parameters"]]))
        print("\n## Against the paper and A_small (means over the seeds retrained; flops: "
              "multiply-accumulates of one image)\n")
        print(markdown(against_paper_and_small(retrained, table_path("mnist", "fast"))))
    reseeded = reseed_summary(runs, evaluations)
    if reseeded is not None:
        print("\n## The cheap reward of the best and the worst cells under another training seed\n")
        print(markdown(reseeded))
    print(f"\nfigures written to {figures}/")


if __name__ == "__main__":
    main()
