"""The records an evaluator builds itself rather than looks up or trains: a cell skipped for its
size, an evaluation that failed, and one record for several training seeds."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..results import NOT_TRAINED, EvalResult
from ..spaces import LargeCell, SmallCell
from .interface import SIZE_METRICS

if TYPE_CHECKING:
    from .interface import Evaluator


def _unevaluated(cell: SmallCell | LargeCell, sizes: dict, evaluator: "Evaluator", *,
                 seed: int | None, failure: str | None, source: str) -> EvalResult:
    """A record with the cell's sizes, NaN accuracies and no training time."""
    return EvalResult(
        arch=cell.to_string(), arch_key=cell.key,
        arch_index=cell.index if isinstance(cell, SmallCell) else None,
        seed=seed, num_seeds=0 if seed is None else 1, validation_accuracy=math.nan,
        test_accuracy=math.nan, val_curve=[], train_loss_sum=None, loss_curve=[], score=None,
        proxy_scores=None,
        training_time=0.0, evaluation_time=0.0,
        **{k: sizes[k] for k in SIZE_METRICS}, latency_ms=None, diverged=False,
        failure=failure, source=source, dataset=evaluator.dataset, protocol=evaluator.protocol,
        fidelity=0.0 if seed is None else 1.0, device="", precision="", **NOT_TRAINED,
    )


def skipped_result(cell: SmallCell | LargeCell, sizes: dict, evaluator: "Evaluator") -> EvalResult:
    """The record of a cell that was not evaluated because its size is over the budget: its
    sizes, NaN accuracies, no training time, ``source="skipped"``."""
    return _unevaluated(cell, sizes, evaluator, seed=None, failure=None, source="skipped")


def failed_result(cell: SmallCell | LargeCell, sizes: dict, reason: str, seed: int,
                  evaluator: "Evaluator") -> EvalResult:
    """The record of an evaluation that could not finish (e.g. out of memory): ``failure=reason``."""
    return _unevaluated(cell, sizes, evaluator, seed=seed, failure=reason, source="training")


def mean_result(results: Sequence[EvalResult]) -> EvalResult:
    """One record for several training seeds of one cell: accuracies, scores, times and latency
    averaged, ``seed=None``, ``diverged`` if any seed diverged, the first failure if any failed."""
    first = results[0]
    if len(results) == 1:
        return first
    curves = [dict(map(tuple, r["val_curve"])) for r in results]
    epochs = sorted(set.intersection(*(set(c) for c in curves)))
    merged = dict(first)
    merged.update({k: float(np.mean([r[k] for r in results]))
                   for k in ("validation_accuracy", "test_accuracy", "training_time")})
    latencies = [r["latency_ms"] for r in results]
    merged["latency_ms"] = None if None in latencies else float(np.mean(latencies))
    scores = [r.get("score") for r in results]
    merged["score"] = None if None in scores else float(np.mean(scores))
    losses = [r.get("train_loss_sum") for r in results]
    merged["train_loss_sum"] = None if None in losses else float(np.mean(losses))
    loss_curves = [dict(map(tuple, r["loss_curve"])) for r in results]
    loss_epochs = sorted(set.intersection(*(set(c) for c in loss_curves)))
    times = [r.get("evaluation_time") for r in results]
    merged["evaluation_time"] = None if None in times else float(np.mean(times))
    merged.update(
        seed=None, num_seeds=len(results),
        val_curve=[[e, float(np.mean([c[e] for c in curves]))] for e in epochs],
        loss_curve=[[e, float(np.mean([c[e] for c in loss_curves]))] for e in loss_epochs],
        diverged=any(r["diverged"] for r in results),
        failure=next((r["failure"] for r in results if r["failure"]), None),
        source="cache" if all(r["source"] == "cache" for r in results) else "training",
    )
    return merged
