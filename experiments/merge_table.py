"""Add the rows of a reward table built elsewhere (another machine, a GPU machine) to a table here.

    python experiments/merge_table.py /path/from/elsewhere/small_fashion_mnist_fast.csv \
        --into reward_tables/small_fashion_mnist_fast.csv

Both tables need their JSON sidecars, recording the same protocol (dataset, split, precision,
protocol fields; the device and library versions may differ, and each row records its device).
Rows the target already has are kept; the target is rewritten atomically under its lock, so this
is safe while builders fill it.
"""

from __future__ import annotations

import argparse

import pandas as pd

from nas_env.table_builder import merge_table_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the table (CSV) whose rows to add")
    parser.add_argument("--into", required=True, help="the table (CSV) to add them to")
    args = parser.parse_args()
    added = merge_table_rows(args.source, args.into)
    print(f"{added} rows added to {args.into}; it has {len(pd.read_csv(args.into))} rows now")


if __name__ == "__main__":
    main()
