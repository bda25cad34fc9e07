"""What every backend shares: the job, the spec its jobs share, and the run of one job.

A :class:`Job` is one training run (a cell and a training seed); a :class:`TrainingSpec` is what
every job of one evaluator shares, sent to a worker once. :func:`run_job` trains one job wherever
it runs (the driver, a pool worker, a Ray task) and gives its :data:`Outcome`.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from ..results import EvalResult
from ..run_checkpoint import CHECKPOINT_EVERY, RunInProgressError
from ..spaces import LargeCell, SmallCell

DEFAULT_MAX_RETRIES = 2
STOP_POLL_SECONDS = 0.5
"""How often a process-pool or Ray driver checks for a stop request while its jobs run."""
IN_PROGRESS = "in_progress"
"""The failure reason's prefix of a run another process holds (see :func:`run_job`)."""

Outcome = EvalResult | str
"""What a job gives: its result, or why it failed (``"worker_lost: ..."``, ``"out_of_memory: ..."``)."""


@dataclass(frozen=True)
class TrainingSpec:
    """What every job of one evaluator shares; sent to a worker once, not with every job.

    :param dataset: the dataset's name.
    :param data_root: where workers on this machine load it from (``None``: ``$NAS_ENV_DATA``,
        else the per-user cache).
    :param protocol: the protocol's fields (:meth:`nas_env.training.Protocol.as_dict`).

    ``device``, ``precision``, ``threads``, ``measure_latency``, ``checkpoint_dir`` and
    ``checkpoint_every`` are as for :func:`~nas_env.training.train_child` (``checkpoint_dir`` must
    be a folder every worker can reach: on a cluster, a shared filesystem).
    """

    dataset: str
    data_root: str | None
    protocol: dict
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    measure_latency: bool = False
    checkpoint_dir: str | None = None
    checkpoint_every: float = CHECKPOINT_EVERY


@dataclass(frozen=True)
class Job:
    """One training run: a cell and a training seed."""

    cell: SmallCell | LargeCell
    seed: int


def worker_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(spec: TrainingSpec, data, job: Job, queued_at: float,
            threads: int | None = None) -> Outcome:
    """Train one job on ``data``; the result gains ``worker``, ``wait_seconds``, ``run_seconds``.

    A CUDA out-of-memory error is returned as a failure reason (a later run with more memory may
    succeed, so it is not a result), and a run another process is training into the same
    checkpoint folder as ``"in_progress: ..."`` (:data:`IN_PROGRESS`: the caller waits for that
    process's result); any other exception propagates.
    """
    import torch

    # Looked up at call time, so a replaced nas_env.training.train_child (the fault-injection
    # hook of the tests, a test's monkeypatch) is the one that runs.
    from ..training import Protocol, train_child

    start = time.time()
    try:
        result = train_child(job.cell, data, Protocol.from_dict(spec.protocol), seed=job.seed,
                             device=spec.device, precision=spec.precision,
                             threads=spec.threads if threads is None else threads,
                             measure_latency=spec.measure_latency,
                             checkpoint_dir=spec.checkpoint_dir,
                             checkpoint_every=spec.checkpoint_every)
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        return f"out_of_memory: {err}".splitlines()[0]
    except RunInProgressError as err:
        return f"{IN_PROGRESS}: {err}"
    result.update(worker=worker_name(), wait_seconds=max(0.0, start - queued_at),
                  run_seconds=time.time() - start)
    return result


def check_count(name: str, value) -> None:
    """Raise unless ``value`` is an integer >= 1 (a count of workers)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; allowed: an integer >= 1")
