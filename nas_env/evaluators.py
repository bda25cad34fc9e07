"""The evaluators' old home, kept so that ``from nas_env.evaluators import ...`` works.

Everything here is re-exported from :mod:`nas_env.evaluation`, where it lives now: the
``Evaluator`` interface (``evaluation.interface``), ``TableEvaluator`` (``evaluation.table``),
``LiveEvaluator`` (``evaluation.live``), the records built without a lookup or a run
(``evaluation.records``) and ``make_evaluator`` with the envs' live keywords
(``evaluation.factory``). New code imports from those modules.
"""

from .evaluation.factory import LIVE_KEYWORDS, make_evaluator
from .evaluation.interface import SIZE_METRICS, SPACES, Evaluator
from .evaluation.live import IN_PROGRESS_POLL_SECONDS, LiveEvaluator
from .evaluation.records import failed_result, mean_result, skipped_result
from .evaluation.table import TableEvaluator

__all__ = ["IN_PROGRESS_POLL_SECONDS", "LIVE_KEYWORDS", "SIZE_METRICS", "SPACES", "Evaluator",
           "LiveEvaluator", "TableEvaluator", "failed_result", "make_evaluator", "mean_result",
           "skipped_result"]
