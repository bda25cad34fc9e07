"""The process-pool backend: a pool of worker processes on this machine.

Each worker (:mod:`nas_env.backends.worker`) has its own torch thread count and loads the dataset
once when it starts. A worker that dies during a job costs the job a retry; since the pool cannot
tell which of the jobs running at that moment killed it, each of them is retried alone, and only
a death while a job runs alone is charged to that job.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Iterator, Sequence

from ..run_checkpoint import RunStopped
from .base import EvalBackend
from .jobs import DEFAULT_MAX_RETRIES, STOP_POLL_SECONDS, Job, Outcome, check_count
from .worker import init_process_worker, process_job


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
        check_count("workers", workers)
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
                initializer=init_process_worker,
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
                future = self._pool().submit(process_job, self.spec, jobs[i], queued_at,
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
