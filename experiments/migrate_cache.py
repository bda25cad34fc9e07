"""Move the rows of an evaluation cache written before run identities (schema 1) to schema 2.

A schema-1 row was keyed without the dataset's files, split sizes, precision or device, so it is
never served as it is. Run this on a cache whose rows you know were trained on the dataset files
under the data root (resolved as everywhere: --data-root, else $NAS_ENV_DATA, else the per-user
cache): each row is stored again under the full identity of those files, its own recorded
precision and device, and its protocol's split sizes.

    python experiments/migrate_cache.py --cache-path reward_tables/evaluations/large_mnist_cheap.sqlite \
        --dataset mnist --drop-legacy
"""

from __future__ import annotations

import argparse

from nas_env.cache import EvaluationCache, default_cache_path
from nas_env.data import DATASETS, VALIDATION_FRACTION, data_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-path", default=None, help=f"the cache (default: {default_cache_path()})")
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="the dataset whose rows to move")
    parser.add_argument("--data-root", default=None, help="where that dataset's files are")
    parser.add_argument("--drop-legacy", action="store_true",
                        help="remove the schema-1 table once all of its rows were moved")
    args = parser.parse_args()

    cache = EvaluationCache(args.cache_path)
    before = cache.legacy_row_count()
    added = cache.adopt_legacy_rows(args.dataset, data_record(args.dataset, args.data_root),
                                    VALIDATION_FRACTION, drop_legacy=args.drop_legacy)
    print(f"{cache.path}: {added} of {before} schema-1 rows stored under full identities; "
          f"{cache.legacy_row_count()} schema-1 rows left; {len(cache)} rows in all")
    cache.close()


if __name__ == "__main__":
    main()
