"""Evaluators: an architecture in, an :class:`~nas_env.results.EvalResult` out.

The envs do not know where a result comes from. They hold an
:class:`~nas_env.evaluation.interface.Evaluator` and call ``evaluator.evaluate(cell, rng)``;
three implementations answer:

- :class:`~nas_env.evaluation.table.TableEvaluator` looks the cell up in a
  :class:`~nas_env.tables.reward_table.RewardTable` (A_small only), in microseconds, optionally
  at a lower ``fidelity`` (the validation accuracy at an earlier checkpoint of the recorded curve,
  charged that fraction of the training time, as NAS-Bench-201's ``simulate_train_eval`` does).
- :class:`~nas_env.evaluation.live.LiveEvaluator` trains the cell's child network with
  :func:`~nas_env.training.train_child` under a named protocol, on a dataset loaded once on
  first use, through a backend (:mod:`nas_env.backends`), and stores every finished run in an
  :class:`~nas_env.cache.EvaluationCache`, so a known cell costs a lookup.
- :class:`~nas_env.evaluation.score.ScoreEvaluator` rewards zero-cost scores of the untrained
  network (:mod:`nas_env.zero_cost`), alone or beside a short training.

All give each architecture's sizes without evaluating it (``Evaluator.size``), which is how an
env applies a parameter budget before paying for any training.

| module | what it holds |
|---|---|
| `nas_env.evaluation.interface` | `Evaluator`, the interface the envs use; `SIZE_METRICS` |
| `nas_env.evaluation.records` | records built, not looked up: skipped, failed, a mean of seeds |
| `nas_env.evaluation.table` | `TableEvaluator` |
| `nas_env.evaluation.live` | `LiveEvaluator` |
| `nas_env.evaluation.score` | `ScoreEvaluator` and the training-free protocols' percentiles |
| `nas_env.evaluation.factory` | `make_evaluator`: the evaluator an env's keywords name |

Example::

    from nas_env.evaluation import LiveEvaluator
    from nas_env.spaces import LargeCell

    evaluator = LiveEvaluator("large", dataset="mnist", protocol="cheap")
    result = evaluator.evaluate(LargeCell.from_action([0, 0, 1, 5] * 1))
    result["validation_accuracy"], result["source"]      # (..., "training"); again: "cache"

Nothing here imports torch until a cell is trained or scored.
"""

from .factory import LIVE_KEYWORDS, make_evaluator
from .interface import SIZE_METRICS, SPACES, Evaluator
from .live import LiveEvaluator
from .records import failed_result, mean_result, skipped_result
from .score import ScoreEvaluator
from .table import TableEvaluator

__all__ = ["LIVE_KEYWORDS", "SIZE_METRICS", "SPACES", "Evaluator", "LiveEvaluator",
           "ScoreEvaluator", "TableEvaluator", "failed_result", "make_evaluator", "mean_result",
           "skipped_result"]
