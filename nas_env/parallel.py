"""Backends that train a batch of child networks: in the driver, in a process pool, or on Ray.

A :class:`~nas_env.evaluators.LiveEvaluator` answers what its cache holds, removes duplicates,
and hands each remaining (cell, training seed) pair to its backend as a :class:`Job`. The backend
trains them and yields ``(job index, outcome)`` pairs as they finish, in whatever order the
workers finish; the evaluator stores each finished result in the cache the moment it arrives and
puts the batch back in order. Workers never touch the cache, so they need no shared file system.

``inline`` (:class:`InlineBackend`)
    One job at a time in the driver: the behaviour of an evaluator without a backend.
``process`` (:class:`ProcessBackend`)
    A pool of ``workers`` processes on this machine, each with its own torch thread count, each
    loading the dataset once when it starts.
``ray`` (:class:`RayBackend`)
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
every worker is told within ``STOP_POLL_SECONDS`` and does the same, the jobs not yet started
stop before their first step, and the batch ends with
:class:`~nas_env.run_checkpoint.RunStopped` once every running job has saved (what finished
before is yielded first, so it is cached). Ray tasks cannot be told: they are cancelled, and each
resumes from its last periodic save. Without a ``checkpoint_dir`` a stop request changes nothing.

A process-pool worker whose driver is gone (killed without a chance to shut the pool down) notices
within ``ORPHAN_CHECK_SECONDS`` and exits instead of training on for nobody.

Every outcome is an :class:`~nas_env.results.EvalResult` with ``worker`` (``host:pid`` of the
process that trained it), ``wait_seconds`` (from the batch's dispatch to the job's start) and
``run_seconds`` (the job's time in the worker), or a failure reason (a string).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from .results import EvalResult
from .run_checkpoint import (CHECKPOINT_EVERY, RunInProgressError, RunStopped, request_stop,
                             stop_requested)
from .spaces import LargeCell, SmallCell

BACKENDS = ("inline", "process", "ray")
DEFAULT_MAX_RETRIES = 2
STOP_POLL_SECONDS = 0.5
"""How often a process-pool or Ray driver checks for a stop request while its jobs run."""
IN_PROGRESS = "in_progress"
"""The failure reason's prefix of a run another process holds (see :func:`run_job`)."""
RAY_INSTALL = "pip install -e '.[ray]'  (or: pip install 'ray>=2.9')"

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

    from .training import Protocol, train_child

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


class EvalBackend(ABC):
    """Trains the jobs of a batch; see the module docstring.

    :attr name: ``"inline"``, ``"process"`` or ``"ray"``.
    :attr workers: how many jobs run at once (for Ray: the CPUs of a local cluster it starts).
    """

    name: str
    workers: int

    def __init__(self) -> None:
        self.spec: TrainingSpec | None = None
        self._load_data: Callable[[], Any] | None = None

    def bind(self, spec: TrainingSpec, load_data: Callable[[], Any]) -> None:
        """Set what the jobs share; ``load_data()`` gives the dataset in the driver (called only
        by backends that need it there)."""
        self.spec, self._load_data = spec, load_data

    @abstractmethod
    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]:
        """Train ``jobs``; yield ``(index into jobs, outcome)`` as each finishes. Closing the
        iterator early (an exception in the caller, Ctrl-C) cancels the unfinished jobs."""

    def close(self) -> None:
        """Shut the workers down. The backend starts them again if used after."""

    def device_type(self, device: str) -> str:
        """The device type (``"cpu"``, ``"cuda"``) the jobs will train on when asked for
        ``device`` (``"auto"``: CUDA where this machine has it)."""
        from .training import resolve_device

        return resolve_device(device).type

    def _stop_applies(self) -> bool:
        """A stop request is in force and the jobs have somewhere to save their state."""
        return self.spec.checkpoint_dir is not None and stop_requested()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


class InlineBackend(EvalBackend):
    """One job at a time in the driver, with the evaluator's own copy of the dataset."""

    name = "inline"
    workers = 1

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]:
        data = self._load_data()
        for i, job in enumerate(jobs):
            yield i, run_job(self.spec, data, job, time.time())


# --- process pool ---------------------------------------------------------------------------

_worker_data = None


ORPHAN_CHECK_SECONDS = 1.0
"""How often a process-pool worker checks that its driver is still there."""


def _watch_driver(driver: int, stop) -> None:
    """Exit this worker once its parent is no longer ``driver`` (the driver died and the worker
    was re-parented): nobody would receive what it trains. Pass a stop request on: once the
    driver sets the event ``stop``, :func:`~nas_env.run_checkpoint.request_stop` here."""
    while os.getppid() == driver:
        if stop.wait(ORPHAN_CHECK_SECONDS) and not stop_requested():
            request_stop()
            stop = threading.Event()  # told once; from here on only watch the driver
    os._exit(1)


def _request_stop_on_signal(signum, frame) -> None:
    request_stop()


def _init_process_worker(spec: TrainingSpec, threads: int, driver: int, stop) -> None:
    """Pool initializer: ignore Ctrl-C (the driver handles it), save and stop on SIGTERM where
    runs have a checkpoint folder (``timeout``, systemd and SLURM send it to the whole process
    group, workers included: the run in training saves at the end of its step instead of
    losing the time since its last save), exit when the driver (the pid that made the pool: it
    may have died before this worker got here) is gone, take the driver's stop request when the
    event ``stop`` is set, set threads, load the data once."""
    import torch

    from .data import load_dataset

    global _worker_data
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.checkpoint_dir is not None:
        signal.signal(signal.SIGTERM, _request_stop_on_signal)
    threading.Thread(target=_watch_driver, args=(driver, stop), daemon=True,
                     name="watch-driver").start()
    torch.set_num_threads(threads)
    _worker_data = load_dataset(spec.dataset, spec.data_root)


def _process_job(spec: TrainingSpec, job: Job, queued_at: float, threads: int) -> Outcome:
    return run_job(spec, _worker_data, job, queued_at, threads=threads)


class ProcessBackend(EvalBackend):
    """A pool of worker processes on this machine.

    :param workers: processes (jobs at once).
    :param threads: torch CPU threads per worker (default: the spec's, else 1).
    :param max_retries: retries of a job whose worker died.
    :param start_method: multiprocessing's (``"spawn"``: a fresh interpreter, safe with threads).
    """

    name = "process"

    def __init__(self, workers: int = 2, threads: int | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES, start_method: str = "spawn") -> None:
        super().__init__()
        _check_count("workers", workers)
        self.workers, self.threads, self.max_retries = int(workers), threads, int(max_retries)
        self.start_method = start_method
        self._executor = None
        self._stop = None  # the pool's event that passes a stop request on to its workers

    def _pool(self):
        if self._executor is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            context = mp.get_context(self.start_method)
            self._stop = context.Event()
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context,
                initializer=_init_process_worker,
                initargs=(self.spec, self._threads(), os.getpid(), self._stop))
        return self._executor

    def _threads(self) -> int:
        return int(self.threads or self.spec.threads or 1)

    def worker_pids(self) -> list[int]:
        """The pids of the pool's live processes (empty before the first batch)."""
        if self._executor is None:
            return []
        return [p.pid for p in list(self._executor._processes.values()) if p.is_alive()]

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        queued_at = time.time()
        waiting = deque(range(len(jobs)))
        alone: deque[int] = deque()  # jobs lost with a broken pool, retried one at a time
        attempts = [0] * len(jobs)
        running: dict = {}
        stopped: list[RunStopped] = []

        def submit(i: int, queue: deque) -> bool:
            """Submit job ``i``; if the pool broke since the last wait, put it back in ``queue``
            (the running jobs then come back lost, and a new pool is made)."""
            try:
                future = self._pool().submit(_process_job, self.spec, jobs[i], queued_at,
                                             self._threads())
            except BrokenProcessPool:
                queue.appendleft(i)
                if not running:  # nothing left to report the loss: start a new pool now
                    self._discard_pool()
                return False
            running[future] = i
            return True

        try:
            while waiting or running or alone:
                # At most `workers` jobs are submitted, so every submitted job is running. A job
                # lost with others runs alone until it finishes, so that a death can be charged to
                # the job that caused it. After a stop request the jobs still waiting go through
                # too: each stops before its first step.
                if alone:
                    if not running:
                        submit(alone.popleft(), alone)
                else:
                    while waiting and len(running) < self.workers:
                        if not submit(waiting.popleft(), waiting):
                            break
                if self._stop_applies():
                    self._stop.set()  # wakes each worker's watcher thread at once
                done, _ = wait(running, timeout=STOP_POLL_SECONDS, return_when=FIRST_COMPLETED)
                lost = []
                for future in done:
                    i = running.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool as err:
                        lost.append((i, err))
                        continue
                    except RunStopped as stop:
                        stopped.append(stop)
                        continue
                    yield i, outcome
                if lost:  # the pool is broken: every running job is lost with it
                    for future in list(running):
                        try:
                            outcome = future.result()
                        except BrokenProcessPool as err:
                            lost.append((running[future], err))
                        except RunStopped as stop:
                            stopped.append(stop)
                        else:
                            yield running[future], outcome
                        del running[future]
                    self._discard_pool()
                    if len(lost) > 1:  # which job killed the pool is unknown: charge none
                        alone.extend(i for i, _ in lost)
                    else:
                        (i, err), = lost
                        attempts[i] += 1
                        if attempts[i] > self.max_retries:
                            yield i, (f"worker_lost: the worker process died {attempts[i]} times "
                                      f"while training this job alone ({err})")
                        else:
                            alone.appendleft(i)
        finally:
            if running:  # interrupted: stop the jobs that did not finish
                self._discard_pool()
        if stopped:  # its workers hold the stop request for good: a later batch gets new ones
            self._discard_pool()
            raise _stopped_runs(stopped)

    def _discard_pool(self) -> None:
        self._stop = None
        if self._executor is None:
            return
        processes = list(self._executor._processes.values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.kill()
        for p in processes:
            p.join(timeout=10)
        self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
            self._stop = None


def _stopped_runs(stopped: Sequence[RunStopped]) -> RunStopped:
    """One :class:`RunStopped` for the jobs of a batch that stopped on request, naming every run
    that saved its state after at least one step."""
    saved = [s for s in stopped if s.step]
    if len(saved) <= 1:
        return saved[0] if saved else stopped[0]
    runs = "; ".join(f"{s.path} after step {s.step} of {s.total_steps}" for s in saved)
    return RunStopped(saved[0].path, saved[0].step, saved[0].total_steps,
                      f"stopped on request; {len(saved)} runs saved their state ({runs})")


# --- Ray --------------------------------------------------------------------------------------

_ray_data: dict[str, Any] = {}


def _ray_job(spec: TrainingSpec, data_ref: list, job: Job, queued_at: float,
             threads: int) -> Outcome:
    """A Ray task: fetch the dataset from the object store once per worker process, train."""
    import ray

    key = data_ref[0].hex()
    if key not in _ray_data:
        _ray_data.clear()
        _ray_data[key] = ray.get(data_ref[0])
    return run_job(spec, _ray_data[key], job, queued_at, threads=threads)


def import_ray():
    """``ray``, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"backend='ray' needs Ray, which is not installed; install it with: "
                          f"{RAY_INSTALL}") from None
    return ray


class RayClusterError(RuntimeError):
    """The Ray cluster a :class:`RayBackend` was pointed at could not be joined."""


def _use_ray_token_if_present() -> None:
    """Turn on Ray's token authentication for this driver where ``RAY_AUTH_MODE`` is unset and a
    token is at hand (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``): the
    rule by which ``ray start`` turns it on for the cluster, which ``ray.init`` does not follow
    when it joins one (it is then refused with ``InvalidAuthToken``). A driver with a token
    also joins a cluster that asks for none."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication (before 2.52)
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


class RayBackend(EvalBackend):
    """One Ray task per job.

    :param workers: CPUs of the private local Ray started when no address is given (default: all
        of this machine's), even where a cluster runs on this machine; on a cluster, Ray's
        resources decide how many run at once.
    :param num_cpus: CPUs each task reserves (also its torch thread count, at least 1).
    :param num_gpus: GPUs each task reserves; a fraction shares a GPU between children.
    :param address: a cluster to join (``"auto"``: the one started on this machine,
        ``"ray://host:10001"``, ``"host:6379"``); default ``$RAY_ADDRESS``, else a new private
        local Ray. Where ``RAY_AUTH_MODE`` is unset and a token is at hand, the driver uses it,
        as ``ray start`` does. A cluster that cannot be joined raises :class:`RayClusterError`.
    :param max_retries: Ray's retries of a task whose worker or node died.
    :param runtime_env: Ray's runtime environment for the tasks (``env_vars``, ``working_dir``,
        ``pip``, ...), e.g. where cluster nodes lack this package.
    """

    name = "ray"

    def __init__(self, workers: int | None = None, num_cpus: float = 1.0, num_gpus: float = 0.0,
                 address: str | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
                 runtime_env: dict | None = None) -> None:
        super().__init__()
        import_ray()
        if workers is not None:
            _check_count("workers", workers)
        self.workers = int(workers) if workers is not None else (os.cpu_count() or 1)
        self.num_cpus, self.num_gpus = float(num_cpus), float(num_gpus)
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.max_retries = int(max_retries)
        self.runtime_env = runtime_env
        self._started_ray = False
        self._data_ref = None
        self._remote = None

    def _start(self) -> None:
        ray = import_ray()
        if not ray.is_initialized():
            if self.address:
                _use_ray_token_if_present()
                try:
                    ray.init(address=self.address, log_to_driver=False)
                except ConnectionError as err:
                    raise RayClusterError(
                        f"could not join the Ray cluster at {self.address!r} ({err}). Is it "
                        "running (`ray status`)? If it uses token authentication, this driver "
                        "needs the cluster's token: RAY_AUTH_TOKEN, or the file "
                        "~/.ray/auth_token") from None
            else:
                # address="local": a private Ray of `workers` CPUs, even where a cluster started
                # by `ray start` runs on this machine (join that one with address="auto").
                # Ray runs its workers at niceness 15, below the driver; here they do all the
                # work, and on a busy machine that starves them (torch's import took 80 s
                # instead of 4 s beside two training processes), so keep them at the driver's.
                ray.init(address="local", num_cpus=self.workers, include_dashboard=False,
                         log_to_driver=False, _system_config={"worker_niceness": 0})
            self._started_ray = True
        if self._data_ref is None:
            self._data_ref = ray.put(self._load_data())
        if self._remote is None:
            options = dict(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                           max_retries=self.max_retries, retry_exceptions=False)
            if self.runtime_env is not None:
                options["runtime_env"] = self.runtime_env
            self._remote = ray.remote(_ray_job).options(**options)

    def device_type(self, device: str) -> str:
        """Where a task reserves a GPU, ``"auto"`` means its GPU, whatever the driver has."""
        if str(device) == "auto" and self.num_gpus > 0:
            return "cuda"
        return super().device_type(device)

    def _threads(self) -> int:
        """Torch threads per task: the spec's, else the CPUs the task reserves (at least 1)."""
        return int(self.spec.threads or max(1, int(self.num_cpus)))

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]:
        ray = import_ray()
        self._raise_if_stopping(started=False)
        self._start()
        queued_at = time.time()
        threads = self._threads()
        pending = {self._remote.remote(self.spec, [self._data_ref], job, queued_at, threads): i
                   for i, job in enumerate(jobs)}
        lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.ObjectLostError, ray.exceptions.TaskCancelledError)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=STOP_POLL_SECONDS)
                for ref in done:  # finished results are handed back (and cached) first
                    i = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except lost as err:
                        outcome = (f"worker_lost: {type(err).__name__} after "
                                   f"{self.max_retries} retries")
                    yield i, outcome
                if pending:
                    self._raise_if_stopping(started=True)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def _raise_if_stopping(self, started: bool) -> None:
        if self._stop_applies():
            raise RunStopped(None, 0, 0, (
                "stopped on request; the Ray tasks in training were cancelled, and each resumes "
                "from its last periodic save") if started else
                "stopped on request before the batch's Ray tasks started")

    def close(self) -> None:
        self._data_ref = None
        self._remote = None
        if self._started_ray:
            import_ray().shutdown()
            self._started_ray = False


def make_backend(backend: str | EvalBackend = "inline", workers: int | None = None,
                 **options: Any) -> EvalBackend:
    """The backend a keyword names: ``"inline"``, ``"process"``, ``"ray"`` or an instance.

    :param workers: jobs at once (``process``: default 2; ``ray``: CPUs of a local Ray).
    :param options: the backend class's other keywords (``threads``, ``num_cpus``, ``num_gpus``,
        ``address``, ``max_retries``).
    """
    if isinstance(backend, EvalBackend):
        if workers is not None or options:
            raise ValueError("workers and backend options configure a backend made from its name; "
                             "set them on the backend instance passed instead")
        return backend
    if backend == "inline":
        if workers not in (None, 1) or options:
            raise ValueError(f"backend='inline' trains one job at a time; workers={workers!r} "
                             "needs backend='process' or 'ray'")
        return InlineBackend()
    if backend == "process":
        return ProcessBackend(2 if workers is None else workers, **options)
    if backend == "ray":
        return RayBackend(workers, **options)
    raise ValueError(f"backend={backend!r}; allowed: {', '.join(BACKENDS)} or an EvalBackend")


def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; allowed: an integer >= 1")
