"""The process-pool worker's side: its start-up, its signal handling, and its jobs.

A worker ignores Ctrl-C (the driver handles it), saves and stops on SIGTERM where runs have a
checkpoint folder, takes the driver's stop request, exits once its driver is gone, and loads the
dataset once, when it starts.
"""

from __future__ import annotations

import os
import signal
import threading

from ..run_checkpoint import request_stop, stop_requested
from .jobs import Job, Outcome, TrainingSpec, run_job

_worker_data = None
"""This worker's dataset, loaded once by :func:`init_process_worker`."""

ORPHAN_CHECK_SECONDS = 1.0
"""How often a process-pool worker checks that its driver is still there."""


def watch_driver(driver: int, stop) -> None:
    """Exit this worker once its parent is no longer ``driver`` (the driver died and the worker
    was re-parented): nobody would receive what it trains. Pass a stop request on: once the
    driver sets the event ``stop``, :func:`~nas_env.run_checkpoint.request_stop` here."""
    while os.getppid() == driver:
        if stop.wait(ORPHAN_CHECK_SECONDS) and not stop_requested():
            request_stop()
            stop = threading.Event()  # told once; from here on only watch the driver
    os._exit(1)


def request_stop_on_signal(signum, frame) -> None:
    """SIGTERM's handler in a worker whose runs have a checkpoint folder: save and stop."""
    request_stop()


def init_process_worker(spec: TrainingSpec, threads: int, driver: int, stop) -> None:
    """Pool initializer: ignore Ctrl-C (the driver handles it), save and stop on SIGTERM where
    runs have a checkpoint folder (``timeout``, systemd and SLURM send it to the whole process
    group, workers included: the run in training saves at the end of its step instead of
    losing the time since its last save), exit when the driver (the pid that made the pool: it
    may have died before this worker got here) is gone, take the driver's stop request when the
    event ``stop`` is set, set threads, load the data once."""
    import torch

    from ..data import load_dataset

    global _worker_data
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.checkpoint_dir is not None:
        signal.signal(signal.SIGTERM, request_stop_on_signal)
    threading.Thread(target=watch_driver, args=(driver, stop), daemon=True,
                     name="watch-driver").start()
    torch.set_num_threads(threads)
    _worker_data = load_dataset(spec.dataset, spec.data_root)


def process_job(spec: TrainingSpec, job: Job, queued_at: float, threads: int) -> Outcome:
    """A pool job: :func:`~nas_env.backends.jobs.run_job` on this worker's dataset."""
    return run_job(spec, _worker_data, job, queued_at, threads=threads)
