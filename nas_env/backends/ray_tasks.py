"""The Ray backend: one Ray task per job, on a local Ray or a cluster.

Each task reserves ``num_cpus`` / ``num_gpus`` (fractions let several small children share a
GPU). The backend joins the cluster at ``address`` (or ``$RAY_ADDRESS``), else starts a private
local Ray. The dataset is put into the object store once; each worker process reads it once.
Needs the optional extra: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterator, Sequence

from ..run_checkpoint import RunStopped
from .base import EvalBackend
from .jobs import (DEFAULT_MAX_RETRIES, STOP_POLL_SECONDS, Job, Outcome, TrainingSpec, check_count,
                   run_job)

RAY_INSTALL = "pip install -e '.[ray]'  (or: pip install 'ray>=2.9')"

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
            check_count("workers", workers)
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

