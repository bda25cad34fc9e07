"""Backends that train a batch of child networks: in the driver, in a process pool, or on Ray.

A :class:`~nas_env.evaluation.live.LiveEvaluator` answers what its cache holds, removes
duplicates, and hands each remaining (cell, training seed) pair to its backend as a
:class:`~nas_env.backends.jobs.Job`. The backend trains them and yields ``(job index, outcome)``
pairs as they finish, in whatever order the workers finish; the evaluator stores each finished
result in the cache the moment it arrives and puts the batch back in order. Workers never touch
the cache, so they need no shared file system.

``inline`` (:class:`~nas_env.backends.inline.InlineBackend`)
    One job at a time in the driver: the behaviour of an evaluator without a backend.
``process`` (:class:`~nas_env.backends.process_pool.ProcessBackend`)
    A pool of ``workers`` processes on this machine, each with its own torch thread count, each
    loading the dataset once when it starts.
``ray`` (:class:`~nas_env.backends.ray_tasks.RayBackend`)
    One Ray task per job, with ``num_cpus`` / ``num_gpus`` per task (fractions let several small
    children share a GPU). Joins the cluster at ``address`` (or ``$RAY_ADDRESS``), else starts a
    local Ray. The dataset is put into the object store once; each worker process reads it once.
    Needs the optional extra: ``pip install -e '.[ray]'``.

Faults. A worker that dies during a job (a killed process, a lost Ray node) costs the job a retry;
after ``max_retries`` retries its outcome is the failure ``"worker_lost: ..."`` (not cached), and
the search goes on. The process pool cannot tell which of the jobs running at that moment killed
its worker, so each of them is charged a retry. An exception inside a job (a bug, bad data) is not
retried: it propagates, as it would inline. Interrupting a batch (Ctrl-C) cancels what has not
finished and shuts the workers down; what had finished is already in the cache.

Stopping. With a ``checkpoint_dir`` in the spec, a stop request in the driver
(:func:`~nas_env.run_checkpoint.request_stop`, as the scripts send on SIGTERM or Ctrl-C) reaches
the jobs: inline, the run in training saves its state at the end of its step; in a process pool,
every worker is told within ``STOP_POLL_SECONDS`` (:mod:`nas_env.backends.jobs`) and does the
same, the jobs not yet started stop before their first step, and the batch ends with
:class:`~nas_env.run_checkpoint.RunStopped` once every running job has saved (what finished
before is yielded first, so it is cached). Ray tasks cannot be told: they are cancelled, and each
resumes from its last periodic save. Without a ``checkpoint_dir`` a stop request changes nothing.

A process-pool worker whose driver is gone (killed without a chance to shut the pool down) notices
within ``ORPHAN_CHECK_SECONDS`` (:mod:`nas_env.backends.worker`) and exits instead of training on
for nobody.

Every outcome is an :class:`~nas_env.results.EvalResult` with ``worker`` (``host:pid`` of the
process that trained it), ``wait_seconds`` (from the batch's dispatch to the job's start) and
``run_seconds`` (the job's time in the worker), or a failure reason (a string).

| module | what it holds |
|---|---|
| `nas_env.backends.jobs` | `Job`, `TrainingSpec`, `run_job`: one training run, wherever it runs |
| `nas_env.backends.base` | `EvalBackend`, the interface a live evaluator uses |
| `nas_env.backends.inline` | `InlineBackend` |
| `nas_env.backends.process_pool` | `ProcessBackend`: the pool, its retries, its stop requests |
| `nas_env.backends.worker` | a pool worker's start-up, signal handling and orphan check |
| `nas_env.backends.ray_tasks` | `RayBackend`, `import_ray`, `RayClusterError` |
| `nas_env.backends.factory` | `make_backend`: the backend a keyword names |
"""

from .base import EvalBackend
from .factory import BACKENDS, make_backend
from .inline import InlineBackend
from .jobs import Job, TrainingSpec
from .process_pool import ProcessBackend
from .ray_tasks import RayBackend, RayClusterError, import_ray

__all__ = ["BACKENDS", "EvalBackend", "InlineBackend", "Job", "ProcessBackend", "RayBackend",
           "RayClusterError", "TrainingSpec", "import_ray", "make_backend"]
