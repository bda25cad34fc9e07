"""The reward-table builder's old home, kept so that ``from nas_env.table_builder import ...``
works: everything here is re-exported from :mod:`nas_env.tables.builder`, where it lives now.

To replace what the builder calls (a test's ``monkeypatch.setattr(module, "train_child", ...)``),
patch :mod:`nas_env.tables.builder`: the builder looks the names up there, not here.
"""

from .tables.builder import (TABLE_COLUMNS, atomic_write_text, build_reward_table,
                             default_out_dir, export_cache_table, merge_table_rows,
                             protocol_record, table_stem)

__all__ = ["TABLE_COLUMNS", "atomic_write_text", "build_reward_table", "default_out_dir",
           "export_cache_table", "merge_table_rows", "protocol_record", "table_stem"]
