"""Does training in bf16 change what a table says? A table's rows against the same cells and seed
in a reference table, beside the reference's own seed-to-seed differences.

For every cell of ``--table`` (e.g. a few A_small cells trained with ``build_reward_table.py
--precision bf16``), prints its validation accuracy, the reference's for the same seed and the
reference's for ``--other-seed``, then the mean and largest absolute difference of the table
against the reference (same seed) and of the reference's two seeds, and Spearman's rho over the
cells of each pair.

    python experiments/compare_precision.py --table docs/data/precision_check/small_fashion_mnist_fast.csv \\
        --reference reward_tables/small_fashion_mnist_fast.csv
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="the table to check (CSV)")
    parser.add_argument("--reference", required=True, help="the reference table (CSV)")
    parser.add_argument("--seed", type=int, default=0, help="the seed both tables trained (default: 0)")
    parser.add_argument("--other-seed", type=int, default=1,
                        help="the reference's second seed, for its own spread (default: 1)")
    args = parser.parse_args()

    checked = accuracies(args.table, args.seed)
    same = accuracies(args.reference, args.seed).reindex(checked.index)
    other = accuracies(args.reference, args.other_seed).reindex(checked.index)
    if same.isna().any() or other.isna().any():
        missing = sorted(set(checked.index[same.isna() | other.isna()]))
        parser.error(f"the reference lacks seed {args.seed} or {args.other_seed} of: {', '.join(missing)}")
    frame = pd.DataFrame({"checked": checked, f"reference seed {args.seed}": same,
                          f"reference seed {args.other_seed}": other})
    print(frame.sort_values(f"reference seed {args.seed}", ascending=False).round(2).to_markdown())
    pairs = {f"checked - reference (seed {args.seed})": checked - same,
             f"reference seed {args.other_seed} - seed {args.seed}": other - same}
    print(f"\n{len(checked)} cells")
    for label, diff in pairs.items():
        rho = spearmanr(checked if label.startswith("checked") else other, same).statistic
        print(f"{label}: mean |difference| {diff.abs().mean():.3f}, largest {diff.abs().max():.3f}, "
              f"mean difference {diff.mean():+.3f}, Spearman {rho:.3f}")


if __name__ == "__main__":
    main()
