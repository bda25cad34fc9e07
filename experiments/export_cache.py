"""Write the evaluation cache's results as a reward table (CSV + JSON sidecar, shipped schema).

A live search's results become a table that the table env serves (A_small, once every cell is
in it):

    python experiments/export_cache.py --dataset mnist --protocol cheap --out-dir my_tables
    python -c "import gymnasium as gym, nas_env; gym.make('NASCell-small-v0', protocol='cheap', table_path='my_tables/small_mnist_cheap.csv')"
"""

from __future__ import annotations

import argparse

from nas_env.cache import EvaluationCache, default_cache_path
from nas_env.data import DATASETS
from nas_env.table_builder import export_cache_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-path", default=None, help=f"the cache (default: {default_cache_path()})")
    parser.add_argument("--space", default="small", choices=["small", "large"], help="search space (default: small)")
    parser.add_argument("--dataset", default="mnist", choices=sorted(DATASETS), help="dataset (default: mnist)")
    parser.add_argument("--protocol", default="cheap", help="protocol name (default: cheap)")
    parser.add_argument("--out-dir", required=True, help="folder to write <space>_<dataset>_<protocol>.csv into")
    args = parser.parse_args()

    cache = EvaluationCache(args.cache_path)
    path = export_cache_table(cache, args.dataset, args.protocol, args.out_dir, args.space)
    print(f"table: {path} ({sum(1 for _ in open(path)) - 1} rows from {cache.path})")


if __name__ == "__main__":
    main()
