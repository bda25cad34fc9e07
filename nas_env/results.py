"""The one result record every evaluation returns, whether it was looked up or trained.

A reward table's lookup, a live training run and a cache hit all return an :class:`EvalResult`: a
plain dict with the keys below (a ``TypedDict``, so it costs nothing at run time and goes straight
into an env's ``info``). A searcher cannot tell a lookup from a training run except by ``source``
and by cost, as in NATS-Bench, whose ``simulate_train_eval`` and training code share one shape.

Keys
----
``arch`` (string form), ``arch_key`` (canonical key: equivalent cells share it), ``arch_index``
(A_small's ``8 * op1 + op2``; ``None`` for A_large), ``seed`` (the training seed; ``None`` for a mean
over seeds), ``num_seeds``, ``validation_accuracy`` and ``test_accuracy`` (percent),
``val_curve`` (``[[epoch, validation_accuracy], ...]`` at every checkpoint), ``train_loss_sum``
(the summed training loss of every optimiser step: Ru et al.'s "training speed estimate", TSE;
``None`` where not recorded, as in the reward tables), ``loss_curve`` (``[[epoch, mean training loss
since the previous checkpoint], ...]`` at the validation checkpoints; ``[]`` where not recorded),
``score`` (a training-free protocol's reward: the mean percentile, 0 to 100, of the cell's
zero-cost scores among a reference sample of the space; ``None`` for a trained or looked-up
result), ``proxy_scores`` (the raw zero-cost scores behind it, ``{name: value}``; ``None`` where
none were computed), ``training_time``
(seconds of the training loop, its validation checkpoints included: the cost a search is charged),
``evaluation_time`` (the seconds of ``training_time`` spent on the validation checkpoints, so the
optimiser's share is the difference; ``None`` where not recorded, as in the reward tables),
``trainable_parameters`` and ``cell_parameters`` and ``flops`` (of the paper-size child network,
whatever proxy a protocol trained), ``latency_ms`` (CPU inference of one image; ``None`` where
not measured), ``diverged``, ``failure`` (``None``, or why the evaluation failed: ``"diverged"``,
``"out_of_memory: ..."``, ``"worker_lost: ..."``), ``source`` (``"table"``, ``"training"`` or
``"cache"``), ``dataset``, ``protocol`` (its name), ``fidelity`` (the fraction of the protocol's
training the figures stand for: 1.0 unless a lower fidelity was asked of a table), ``device`` and
``precision``; ``worker`` (``host:pid`` of the process that trained it; ``None`` for a table row or
a cell that was not trained), ``hardware`` (what trained it: the GPU's name, or the CPU's model
with its bf16 features, :func:`nas_env.hardware.device_name`; for a run resumed from a checkpoint,
the machine that finished it), ``threads`` (torch's CPU threads the run trained with; both
``None`` where nothing was trained, and in rows cached before they were recorded),
``wait_seconds`` (from its batch's dispatch to the start of its training) and ``run_seconds`` (its
time in the worker; both 0 where nothing was trained).

``source`` and the worker keys (:data:`PROVENANCE_KEYS`) say how a figure was obtained, not what
the cell scored: an env leaves them out of its step ``info``, so that the same seed and action
give the same info whether the cell was trained or served from the cache (Gymnasium's
determinism check), and keeps them in ``env.unwrapped.last_provenance`` and
``env.unwrapped.source_counts``.
"""

from __future__ import annotations

from typing import Optional, TypedDict

SOURCES = ("table", "training", "cache")


class EvalResult(TypedDict):
    """What one evaluation of one architecture gave; see the module docstring for each key."""

    arch: str
    arch_key: str
    arch_index: Optional[int]
    seed: Optional[int]
    num_seeds: int
    validation_accuracy: float
    test_accuracy: float
    val_curve: list
    train_loss_sum: Optional[float]
    loss_curve: list
    score: Optional[float]
    proxy_scores: Optional[dict]
    training_time: float
    evaluation_time: Optional[float]
    trainable_parameters: int
    cell_parameters: int
    flops: int
    latency_ms: Optional[float]
    diverged: bool
    failure: Optional[str]
    source: str
    dataset: str
    protocol: str
    fidelity: float
    device: str
    precision: str
    worker: Optional[str]
    hardware: Optional[str]
    threads: Optional[int]
    wait_seconds: float
    run_seconds: float


RESULT_KEYS: tuple[str, ...] = tuple(EvalResult.__annotations__)
"""The keys of every :class:`EvalResult`, in order."""

PROVENANCE_KEYS = ("source", "worker", "hardware", "threads", "wait_seconds", "run_seconds")
"""The keys of an :class:`EvalResult` that say where its figures came from (see the module
docstring); a search env's step ``info`` holds the others."""

NOT_TRAINED = {"worker": None, "hardware": None, "threads": None, "wait_seconds": 0.0,
               "run_seconds": 0.0}
"""The worker keys of a record no worker produced (a table row, a skipped cell, a result cached
before these keys existed)."""

RESULT_DEFAULTS = {**NOT_TRAINED, "evaluation_time": None, "train_loss_sum": None,
                   "loss_curve": [], "score": None, "proxy_scores": None}
"""What a record written before a key existed holds for it (a table row, an older cache row)."""
