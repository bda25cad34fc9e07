"""What transfers between two A_small reward tables: rank correlations, where each table's optimum
and the paper's best cell rank on the other, under r_val and r_param, and a scatter plot.

    python experiments/compare_tables.py                         # MNIST against Fashion-MNIST
    python experiments/compare_tables.py --table-a A.csv --table-b B.csv --figure out.png

Each table's best cells, seed spread and near-optimal cells: ``report_cells.py --top 5
--table-path ...``. Correlations are over the cells' seed-mean rewards: Spearman's rho and
Kendall's tau over all 64 cells, and over the best ``--top`` cells of each table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nas_env.benchmark import Reward, RewardTable, table_path  # noqa: E402
from nas_env.spaces import SmallCell  # noqa: E402
from nas_env.table_compare import best_cells, cell_ranks, compare_tables  # noqa: E402

PAPER_BEST = SmallCell("conv3x3", "max_pool2x2")  # the paper's best A_small cell (Table 1)
NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def load(path: str | None, dataset: str, protocol: str) -> RewardTable:
    return RewardTable(path or table_path(dataset, protocol))


def label(table: RewardTable, fallback: str) -> str:
    dataset = (table.meta or {}).get("dataset") or fallback
    return NAMES.get(dataset, dataset)


def scatter(a: RewardTable, b: RewardTable, name_a: str, name_b: str, out: Path,
            top: int = 16) -> None:
    """One point per cell, mean validation accuracy on ``a`` against ``b``, optima marked: every
    cell on the left, and on the right the best ``top`` cells of either table, where the few
    poor cells no longer squeeze the near-optimal ones into a corner."""
    va, vb = a.mean["validation_accuracy"], b.mean["validation_accuracy"]
    marks = [(int(va.argmax()), f"{name_a} optimum", "tab:blue", "o"),
             (int(vb.argmax()), f"{name_b} optimum", "tab:red", "s"),
             (PAPER_BEST.index, f"paper's best {PAPER_BEST.paper_name()}", "tab:green", "^")]
    everything = np.arange(len(va))
    best = np.union1d(best_cells(va, top), best_cells(vb, top))  # the top correlations' cells
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    panels = ((axes[0], everything, f"all {len(va)} cells"),
              (axes[1], best, f"the best {top} of either table ({len(best)} cells)"))
    for ax, shown, title in panels:
        ax.scatter(va[shown], vb[shown], s=14, color="tab:gray",
                   label="a cell (mean of its seeds)")
        for index, text, color, marker in marks:
            if index not in shown:
                continue
            cell = SmallCell.from_index(index).paper_name()
            ax.scatter([va[index]], [vb[index]], s=70, facecolors="none", edgecolors=color,
                       marker=marker, linewidths=1.5,
                       label=f"{text}: {cell}" if "paper" not in text else text)
        ax.set_xlabel(f"{name_a} validation accuracy (%)")
        ax.set_ylabel(f"{name_b} validation accuracy (%)")
        ax.set_title(title)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"A_small cells: {name_a} against {name_b}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", default="mnist", help="dataset of the first table (default: %(default)s)")
    p.add_argument("--b", default="fashion_mnist",
                   help="dataset of the second table (default: %(default)s)")
    p.add_argument("--protocol", default="fast", help="protocol of both tables (default: %(default)s)")
    p.add_argument("--table-a", default=None, help="the first table's CSV instead of the shipped one")
    p.add_argument("--table-b", default=None, help="the second table's CSV instead of the shipped one")
    p.add_argument("--top", type=int, default=16,
                   help="size of each table's best-cell subset for the top correlations and the "
                        "zoomed panel (default: %(default)s)")
    p.add_argument("--figure", default=None,
                   help="scatter plot path (default: docs/figures/transfer_A_B.png)")
    p.add_argument("--json", default=None, help="also write every figure printed to this JSON file")
    args = p.parse_args()

    a, b = load(args.table_a, args.a, args.protocol), load(args.table_b, args.b, args.protocol)
    name_a, name_b = label(a, args.a), label(b, args.b)
    if name_a == name_b:
        name_a, name_b = f"{name_a} (A)", f"{name_b} (B)"
    out = {"table_a": str(a.path), "table_b": str(b.path)}
    print(f"A = {name_a} ({a.path}), B = {name_b} ({b.path}); seed-mean rewards, ranks 1-based\n")
    for kind in ("val", "param"):
        reward = Reward.from_keywords(kind)
        result = compare_tables(a, b, reward, top=args.top)
        if kind == "param":
            result = {k: result[k] for k in ("reward", "optimum_a", "optimum_b")}
        paper = cell_ranks(a, b, PAPER_BEST, reward)
        result["paper_best"] = paper
        out[kind] = result
        title = "r_val" if kind == "val" else f"r_param (n = {reward.budget:,.0f} cell parameters)"
        print(f"## {title}")
        if kind == "param":
            # Every cell over the budget gets the same -100 on both tables, which would make
            # the correlations say more about cell size than about accuracy: optima only.
            print(f"{int(reward.budget_met(a.mean[reward.budget_metric]).sum())} cells meet the "
                  "budget.")
        else:
            print(f"Spearman {result['spearman']:.3f}, Kendall {result['kendall']:.3f} over all 64 "
                  f"cells; over {name_a}'s best {args.top}: Spearman "
                  f"{result[f'spearman_top{args.top}_of_a']:.3f}, Kendall "
                  f"{result[f'kendall_top{args.top}_of_a']:.3f}; over {name_b}'s best {args.top}: "
                  f"Spearman {result[f'spearman_top{args.top}_of_b']:.3f}, Kendall "
                  f"{result[f'kendall_top{args.top}_of_b']:.3f}.")
        for what, row in ((f"{name_a} optimum", result["optimum_a"]),
                          (f"{name_b} optimum", result["optimum_b"]),
                          ("paper's best", paper)):
            print(f"- {what} {row['cell']}: rank {row['rank_on_a']} on {name_a} "
                  f"({row['reward_a']:.2f}), rank {row['rank_on_b']} on {name_b} "
                  f"({row['reward_b']:.2f})")
        print()
    figure = Path(args.figure or f"docs/figures/transfer_{args.a}_{args.b}.png")
    scatter(a, b, name_a, name_b, figure, top=args.top)
    print(f"scatter plot: {figure}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
