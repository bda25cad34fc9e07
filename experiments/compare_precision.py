"""Does training another way (in bf16, or by another protocol) change what a table says? A
table's rows against the same cells and seed in a reference table, beside the reference's own
seed-to-seed differences.

For every cell of ``--table`` that the reference also holds (e.g. a few A_small cells trained with
``build_reward_table.py --precision bf16``), prints its validation accuracy, the reference's for
the same seed and the reference's for ``--other-seed``, then the mean and largest absolute
difference of the table against the reference (same seed) and of the reference's two seeds, and
Spearman's rho over the cells of each pair. Cells the reference does not hold yet are left out
and counted. ``--other-seed none`` leaves the reference's own spread out, for a reference with one
seed so far (e.g. two A_large reference sets being built). ``--cells`` keeps only the cells of a
cell list (a CSV with an ``arch`` column, as ``build_large_reference.py --cells`` reads), for a
figure over a chosen sample of a table that holds more; listed cells the table has not trained yet
are left out and counted.

    python experiments/compare_precision.py --table docs/data/precision_check/small_fashion_mnist_fast.csv \\
        --reference reward_tables/small_fashion_mnist_fast.csv
    python experiments/compare_precision.py --table reward_tables/large_fashion_mnist_ref32.csv \\
        --reference reward_tables/large_fashion_mnist_fast.csv --other-seed none
    python experiments/compare_precision.py --table reward_tables/large_fashion_mnist_fast3.csv \\
        --reference reward_tables/large_fashion_mnist_fast.csv --other-seed none \\
        --cells reward_tables/large_fast3_sample_cells.csv
"""

from __future__ import annotations

import argparse

import pandas as pd
from scipy.stats import spearmanr


def accuracies(path: str, seed: int) -> pd.Series:
    """Validation accuracy per cell (``arch``) for one training seed."""
    table = pd.read_csv(path)
    rows = table[table["seed"] == seed]
    return rows.set_index("arch")["validation_accuracy"]


def other_seed(text: str) -> int | None:
    """``--other-seed``: a seed, or ``none``."""
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a seed (an integer) or 'none'") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="the table to check (CSV)")
    parser.add_argument("--reference", required=True, help="the reference table (CSV)")
    parser.add_argument("--seed", type=int, default=0, help="the seed both tables trained (default: 0)")
    parser.add_argument("--other-seed", type=other_seed, default=1,
                        help="the reference's second seed, for its own spread, or 'none' (default: 1)")
    parser.add_argument("--cells", default=None,
                        help="a cell list (CSV with an 'arch' column): compare only its cells (default: all)")
    args = parser.parse_args()

    checked = accuracies(args.table, args.seed)
    untrained = []
    if args.cells is not None:
        listed = pd.read_csv(args.cells)
        if "arch" not in listed.columns:
            parser.error(f"--cells {args.cells}: no 'arch' column (it has: {', '.join(listed.columns)})")
        untrained = [arch for arch in listed["arch"] if arch not in checked.index]
        checked = checked[checked.index.isin(listed["arch"])]
    same = accuracies(args.reference, args.seed).reindex(checked.index)
    other = None
    if args.other_seed is not None:
        other = accuracies(args.reference, args.other_seed).reindex(checked.index)
        same = same.where(other.notna())
    held = same.notna()
    missing = sorted(checked.index[~held])
    checked, same = checked[held], same[held]
    seeds = f"seed {args.seed}" + ("" if other is None else f" and seed {args.other_seed}")
    if len(checked) < 2:
        parser.error(f"the reference holds {seeds} of {len(checked)} of the table's cells; at least 2 "
                     f"are needed (it lacks: {', '.join(missing)})")
    columns = {"checked": checked, f"reference seed {args.seed}": same}
    pairs = {f"checked - reference (seed {args.seed})": (checked, same)}
    if other is not None:
        other = other[held]
        columns[f"reference seed {args.other_seed}"] = other
        pairs[f"reference seed {args.other_seed} - seed {args.seed}"] = (other, same)
    frame = pd.DataFrame(columns)
    print(frame.sort_values(f"reference seed {args.seed}", ascending=False).round(2).to_markdown())
    print(f"\n{len(checked)} cells")
    if untrained:
        print(f"left out, the table lacks seed {args.seed} of {len(untrained)} listed cells: {', '.join(untrained)}")
    if missing:
        print(f"left out, the reference lacks {seeds} of: {', '.join(missing)}")
    for label, (a, b) in pairs.items():
        diff = a - b
        print(f"{label}: mean |difference| {diff.abs().mean():.3f}, largest {diff.abs().max():.3f}, "
              f"mean difference {diff.mean():+.3f}, Spearman {spearmanr(a, b).statistic:.3f}")


if __name__ == "__main__":
    main()
