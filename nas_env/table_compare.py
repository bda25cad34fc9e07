"""The table comparison's old home, kept so that ``from nas_env.table_compare import ...``
works: everything here is re-exported from :mod:`nas_env.tables.compare`, where it lives now."""

from .tables.compare import best_cells, cell_ranks, compare_tables, rank_agreement, rank_of

__all__ = ["best_cells", "cell_ranks", "compare_tables", "rank_agreement", "rank_of"]
