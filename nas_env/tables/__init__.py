"""Reward tables: what training gave each A_small cell, without training it again.

| module | what it holds |
|---|---|
| `nas_env.tables.schema` | the columns, the sidecar, and the checks a table file must pass |
| `nas_env.tables.reward_table` | `RewardTable`: a checked table, indexed for queries |
| `nas_env.tables.files` | where tables are (`table_path`), one loaded copy shared by the envs |
| `nas_env.tables.builder` | the resumable builder that trains cells into a table (needs torch) |
| `nas_env.tables.compare` | how two tables rank the same cells |

The reward itself (``"val"``, the budgeted ``"param"``) is :class:`nas_env.rewards.Reward`.
Querying a table needs no torch; this package's top level holds the query API below.

Load a table
------------
A reward table is the CSV that :mod:`nas_env.tables.builder` writes, one row per (cell, training
seed), with a JSON sidecar recording the protocol. :func:`table_path` finds a table shipped with
the package (it works from an installed wheel too)::

    from nas_env.tables import RewardTable, table_path

    table = RewardTable(table_path("mnist", "fast"))   # or RewardTable("my/table.csv")

Loading checks the whole table: a missing file, missing columns, bad values or a table that does
not cover all 64 cells of A_small raise an error that names the file and what is wrong.

Query one architecture
----------------------
Name the cell as a :class:`~nas_env.spaces.SmallCell`, its string form, its index
(``8 * op1 + op2``) or the env's action vector ``[op1, op2]``::

    from nas_env.spaces import SmallCell

    cell = SmallCell("conv3x3", "max_pool2x2")
    table.query(cell)                                 # mean over the training seeds
    table.query("|conv3x3~0|+|max_pool2x2~1|", seed_mode="sample", rng=0)   # one seed's row
    table.query([1, 5]) == table.query(13) == table.query(cell)

A query returns a plain dict, the :class:`~nas_env.results.EvalResult` that a live training run
returns too:

``arch`` (string form), ``arch_key``, ``arch_index``, ``seed`` (the row's training seed; ``None``
for a mean), ``num_seeds``, ``validation_accuracy`` and ``test_accuracy`` (percent),
``val_curve`` (the validation accuracy at each checkpoint; for a mean, the mean curve),
``training_time`` (seconds), ``trainable_parameters`` (whole network), ``cell_parameters`` (the two
cells only), ``flops`` (multiply-accumulates per image), ``latency_ms`` (CPU inference of one
image; ``None`` where the builder did not measure it), ``diverged`` and ``failure``, ``source``
(``"table"``), the sidecar's ``dataset`` and ``protocol``, ``fidelity`` (1.0), and the row's
``device`` and ``precision``.

``seed_mode="sample"`` picks one of the cell's training seeds uniformly with a numpy
``Generator`` (``rng``), as NAS benchmarks do to expose seed noise to the searcher.

Many architectures at once
--------------------------
``table.query_batch(actions)`` takes an ``(N, 2)`` integer array of actions and returns a dict of
length-``N`` numpy arrays (pure fancy indexing into per-cell arrays)::

    out = table.query_batch(np.array([[1, 5], [0, 0]]))
    out["validation_accuracy"], out["cell_parameters"]

Rewards and the best architecture
---------------------------------
:meth:`RewardTable.best` takes a :class:`~nas_env.rewards.Reward` or its keywords::

    table.best("val")                                  # the highest mean validation accuracy
    table.best("param")                                # ... among cells with < 150,000 cell params
    table.best("param", budget_metric="flops", budget=50e6)

Test accuracy is reported, never rewarded.
"""

from .files import load_table, table_path, user_table_dir
from .reward_table import RewardTable
from .schema import METRICS, TABLE_COLUMNS, RewardTableError

__all__ = ["METRICS", "TABLE_COLUMNS", "RewardTable", "RewardTableError", "load_table",
           "table_path", "user_table_dir"]
