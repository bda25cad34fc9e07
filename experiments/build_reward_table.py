"""Train A_small cells and write their rewards as a reward table: ``nas-env build-table``.

The same command as ``nas-env build-table`` (:mod:`nas_env.commands.build_table`), with the same
flags and outputs, for a clone of the repository:

    python experiments/build_reward_table.py --dataset fashion_mnist --protocol fast --seeds 0,1
    python experiments/build_reward_table.py --out-dir reward_tables    # the shipped tables
"""

from __future__ import annotations

from nas_env.commands.build_table import build_parser, parse_archs  # noqa: F401
from nas_env.commands.build_table import main as build_table_main


def main() -> None:
    """``nas-env build-table`` with this script's command line."""
    build_table_main(prog="build_reward_table.py")


if __name__ == "__main__":
    main()
