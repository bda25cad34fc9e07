"""The score evaluator's old home, kept so that ``from nas_env.score_evaluator import ...``
works: everything here is re-exported from :mod:`nas_env.evaluation.score`, where it lives now."""

from .evaluation.score import (REFERENCE_SEED, TRAINED, ScoreEvaluator, get_score_protocol,
                               percentile)

__all__ = ["REFERENCE_SEED", "TRAINED", "ScoreEvaluator", "get_score_protocol", "percentile"]
