"""Print the A_small cells as markdown: size, cost, budget feasibility and, where a reward table
covers them, accuracy and rank.

    python experiments/report_cells.py --feasible            # cells under the 150,000 budget
    python experiments/report_cells.py --top 5               # best cells of the shipped table
    python experiments/report_cells.py --table-path tests/fixtures/small_fixture.csv --top 5

Parameters and FLOPs come from the child-network builder; accuracies (seed means) from the table.
"""

from __future__ import annotations

import argparse

import pandas as pd

from nas_env.benchmark import DEFAULT_BUDGETS, RewardTable, table_path
from nas_env.child_net import network_size
from nas_env.spaces import SmallCell

PAPER_CELLS = {  # the paper's best A_small cells (Tables 1 and 2) and its MNIST validation accuracy
    SmallCell("conv3x3", "max_pool2x2"): 98.85,
}


def cell_sizes() -> pd.DataFrame:
    rows = []
    for cell in SmallCell.all():
        rows.append({"arch": cell.to_string(), "cell": cell.paper_name(), **network_size(cell)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table-path", default=None, help="reward table (default: the shipped MNIST fast table)")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGETS["cell_parameters"],
                        help="cell-parameter budget n (default: %(default)d)")
    parser.add_argument("--feasible", action="store_true", help="list the cells under the budget")
    parser.add_argument("--top", type=int, default=0, help="list the best N cells of the table")
    args = parser.parse_args()

    cells = cell_sizes()
    cells["feasible"] = cells["cell_parameters"] < args.budget
    if args.top:
        table = RewardTable(args.table_path or table_path("mnist", "fast"))
        means = table.df.groupby("arch")[["validation_accuracy", "test_accuracy"]].mean()
        spread = table.df.groupby("arch")["validation_accuracy"].agg(lambda s: s.max() - s.min())
        cells = cells.join(means, on="arch").join(spread.rename("seed_spread"), on="arch")
        cells["rank"] = cells["validation_accuracy"].rank(ascending=False, method="min").astype(int)
        cells = cells.sort_values("rank")
        best = cells.iloc[0]
        print(f"Best {args.top} cells by mean validation accuracy ({table.path}):\n")
        print(cells.head(args.top)[["rank", "cell", "validation_accuracy", "test_accuracy",
                                    "seed_spread", "trainable_parameters", "cell_parameters",
                                    "flops"]].to_markdown(index=False, floatfmt=".2f"))
        for cell, paper_val in PAPER_CELLS.items():
            row = cells[cells["arch"] == cell.to_string()].iloc[0]
            per_seed = table.df.loc[table.df["arch"] == cell.to_string(), "validation_accuracy"]
            print(f"\nPaper's best {cell.paper_name()} ({paper_val}% on MNIST in the paper): "
                  f"rank {row['rank']}, "
                  f"{row['validation_accuracy']:.2f}% validation here "
                  f"(per seed: {', '.join(f'{v:.2f}' for v in per_seed)}).")
        worst = cells.iloc[-1]
        q1, median, q3 = cells["validation_accuracy"].quantile([0.25, 0.5, 0.75])
        hours = table.df["training_time"]
        print(f"{len(table.df)} rows; training {hours.sum() / 3600:.1f} CPU-hours in all, "
              f"{hours.min():.0f} to {hours.max():.0f} s per run. Mean validation accuracy over "
              f"cells: quartiles {q1:.2f} / {median:.2f} / {q3:.2f}; worst {worst['cell']} "
              f"{worst['validation_accuracy']:.2f}%.")
        two_seeds = table.df.groupby("arch")["seed"].nunique() > 1
        if two_seeds.any():
            # The typical seed-to-seed difference of one cell (max - min of its seeds), as a
            # median over every cell trained with more than one seed; a single cell's own spread
            # would rest on two numbers.
            spreads = cells.set_index("arch").loc[two_seeds[two_seeds].index, "seed_spread"]
            s_q1, spread, s_q3 = spreads.quantile([0.25, 0.5, 0.75])
            within = cells[cells["validation_accuracy"] >= best["validation_accuracy"] - spread]
            print(f"Median seed-to-seed spread over the {int(two_seeds.sum())} cells with more than "
                  f"one seed: {spread:.2f} points (quartiles {s_q1:.2f} / {s_q3:.2f}); "
                  f"{len(within)} cells lie within it of the best ({', '.join(within['cell'])}).")
        feasible = cells[cells["feasible"]]
        top = feasible.iloc[0]
        print(f"Best cell under the {args.budget:,.0f} cell-parameter budget: {top['cell']} "
              f"({top['validation_accuracy']:.2f}%, {top['cell_parameters']:,} cell parameters).")
    if args.feasible:
        feasible = cells[cells["feasible"]].sort_values("cell_parameters")
        print(f"\n{len(feasible)} of 64 cells have fewer than {args.budget:,.0f} cell parameters:\n")
        print(", ".join(f"{c} ({p:,})" for c, p in zip(feasible["cell"], feasible["cell_parameters"])))


if __name__ == "__main__":
    main()
