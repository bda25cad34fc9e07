"""The reward-table API's old home, kept so that ``from nas_env.benchmark import ...`` works.

Everything here is re-exported from where it lives now:

- :mod:`nas_env.tables`: reading, checking and querying reward tables (``RewardTable``,
  ``table_path``, ``load_table``, the columns and errors; the tutorial is that package's
  docstring);
- :mod:`nas_env.rewards`: the searcher's ``Reward``, its budget rules and ``Optimum``;
- :mod:`nas_env.keywords`: the seed modes.

New code imports from those modules.
"""

from .keywords import SEED_MODES, check_seed_mode
from .rewards import (BUDGET_METRICS, BUDGET_SCOPES, DEFAULT_BUDGETS, R_PARAM_PENALTY,
                      REWARD_TOLERANCE, REWARDS, Optimum, Reward)
from .tables.files import load_table, table_path, user_table_dir
from .tables.reward_table import RewardTable
from .tables.schema import (FLOAT_METRICS, INT_METRICS, MAX_INT, METRICS, NUM_CELLS, SIDECAR_KEYS,
                            TABLE_COLUMNS, RewardTableError)

__all__ = [
    "BUDGET_METRICS", "BUDGET_SCOPES", "DEFAULT_BUDGETS", "FLOAT_METRICS", "INT_METRICS",
    "MAX_INT", "METRICS", "NUM_CELLS", "REWARDS", "REWARD_TOLERANCE", "R_PARAM_PENALTY",
    "SEED_MODES", "SIDECAR_KEYS", "TABLE_COLUMNS", "Optimum", "Reward", "RewardTable",
    "RewardTableError", "check_seed_mode", "load_table", "table_path", "user_table_dir",
]
