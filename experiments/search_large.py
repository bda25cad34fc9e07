"""One live search of ``NASCell-large-v0`` (experiment 3) by any searcher: ``nas-env search``.

The same command as ``nas-env search`` (:mod:`nas_env.commands.search`), with the same outputs,
for a clone of the repository:

    python experiments/search_large.py --method ppo --seed 0 --cells 400 --protocol cheap \\
        --cache-path reward_tables/evaluations/large_mnist_cheap.sqlite
    python experiments/search_large.py --method random --seed 0 --cells 400 --protocol cheap --cache-path ...

For one version this script still reads ``--budget N`` as ``--cells N``, the number of cells to
sample (with a warning), and so has no r_param budget flags; ``nas-env search --budget`` is
r_param's budget n, as everywhere else.
"""

from __future__ import annotations

from nas_env.commands.search import (  # noqa: F401  (the names this script always had)
    LOGGED, EvaluationLog, build_parser, summarize)
from nas_env.commands.search import main as search_main


def main(argv: list[str] | None = None) -> dict:
    """``nas-env search`` with this script's command line (``--budget`` still the cells)."""
    return search_main(argv, prog="search_large.py", legacy_budget=True)


if __name__ == "__main__":
    main()
