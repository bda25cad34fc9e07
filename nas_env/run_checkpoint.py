"""Checkpoints of one child network's training run, so that a run of hours survives an interrupt.

:func:`~nas_env.training.train_child` given a ``checkpoint_dir`` saves the run's whole state
(weights, optimiser and schedule, the epoch's batch order and the position in it, both random
generators, the validation curve so far and the time spent) every ``checkpoint_every`` seconds
of training, and a later call for the same run resumes from it and finishes with the numbers
the uninterrupted run would have given. The file is deleted once the run is done.

A run is named by what determines its numbers (:func:`nas_env.identity.run_identity`, the
identity the evaluation cache keys its rows by: the cell's canonical key, the dataset's files and
the sizes of its splits, the protocol's fields, the seed, the precision, the device type and the
schema version); its file is ``{checkpoint_dir}/{sha256 of that}.pt``, so any caller (the table
builder, a live evaluator, ``retrain_cells.py``) resumes any other's run. Writes are atomic (a
temporary file renamed over the old one), so an interrupt during a save leaves the previous
checkpoint. A run holds a lock on ``{file}.lock`` while it trains (:func:`claim_run`), so a
second process that starts the same run at the same time gets :class:`RunInProgressError`
instead of overwriting the first one's checkpoint; the lock goes with the process that held it,
so a killed run leaves no stale claim. Saves are flushed to disk (file and folder); an unreadable
checkpoint is moved aside and its run started again; a temporary file left by a process killed
while saving is removed by the next process that claims the run.

A run can also be asked to stop without losing a step: after :func:`request_stop` (which
:func:`stop_on_signals` calls when a script gets SIGTERM or Ctrl-C), a run with a checkpoint
folder saves its state at the end of the step it is in and raises :class:`RunStopped`; the same
call later resumes it from there.

Default folder: ``$XDG_CACHE_HOME/nas_env/checkpoints`` (``~/.cache/nas_env/checkpoints``).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from filelock import FileLock, Timeout

# torch and the dataset module are imported where used, so that this module stays light for
# callers that only need CHECKPOINT_EVERY.

CHECKPOINT_EVERY = 300.0
"""Seconds of training between two saves, by default."""


def default_checkpoint_dir() -> Path:
    """``$XDG_CACHE_HOME/nas_env/checkpoints``, else ``~/.cache/nas_env/checkpoints``."""
    from .data import user_cache_dir

    return user_cache_dir() / "checkpoints"


def checkpoint_file(directory: str | os.PathLike, identity: dict) -> Path:
    """The checkpoint file of the run ``identity`` names, under ``directory``."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return Path(directory) / f"{digest[:32]}.pt"


class RunInProgressError(RuntimeError):
    """Another process is training this run (it holds the run's lock)."""


class RunStopped(Exception):
    """A run stopped because :func:`request_stop` asked it to, with its state saved to
    ``path`` after ``step`` of ``total_steps`` steps; the same call resumes it from there.
    ``message`` replaces the default text (a backend that stopped several runs says so).
    Picklable, so a worker process can send it back."""

    def __init__(self, path: Path | None, step: int, total_steps: int,
                 message: str | None = None) -> None:
        super().__init__(message or (
            f"stopped on request after step {step} of {total_steps}, its state saved in {path}"
            if step else f"stopped on request before its first step of {total_steps}"))
        self.path, self.step, self.total_steps = path, step, total_steps

    def __reduce__(self):
        return type(self), (self.path, self.step, self.total_steps, str(self))


_stop_requested = threading.Event()


def request_stop() -> None:
    """Ask the runs of this process that have a checkpoint folder to save their state at the end
    of their current step and raise :class:`RunStopped`; a run that starts afterwards raises it
    before its first step. Runs without a checkpoint folder are not affected. In force until
    :func:`clear_stop_request`."""
    _stop_requested.set()


def clear_stop_request() -> None:
    """Withdraw :func:`request_stop`."""
    _stop_requested.clear()


def stop_requested() -> bool:
    """Whether :func:`request_stop` is in force."""
    return _stop_requested.is_set()


@contextmanager
def stop_on_signals(signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT),
                    program: str | None = None, enabled: bool = True) -> Iterator[None]:
    """For a script's main body: the first of ``signals`` to arrive calls :func:`request_stop`
    (and says so on stderr), so the run in training saves its state and stops at the end of its
    step instead of losing the time since its last save; a second one of the same kind acts as it
    would have without this block (Ctrl-C twice: ``KeyboardInterrupt`` at once). A
    :class:`RunStopped` leaving the block becomes a one-line message on stderr and exit status
    ``128 + signal number`` (143 for SIGTERM, 130 for Ctrl-C), as for a process the signal
    ended. Signals that are ignored when the block starts (``nohup``'s SIGINT of a background job)
    stay ignored. Call it from the main thread; the handlers and the request are withdrawn when
    the block ends. ``program`` starts each message (default: the script's file name).

    ``enabled=False`` makes the block change nothing, for a script whose runs have no checkpoint
    folder (``--no-checkpoints``) or that trains nothing: a stop request would not stop them, so
    the first signal should act as it always does.
    """
    if not enabled:
        yield
        return
    program = program or Path(sys.argv[0]).name or "python"
    received: list[int] = []

    def handle(signum: int, frame) -> None:
        received.append(signum)
        request_stop()
        signal.signal(signum, previous[signum])
        # Straight to the file descriptor: the signal may have come while the main thread was
        # writing to sys.stderr (a progress bar), which a second buffered write would break.
        os.write(2, f"{program}: {signal.Signals(signum).name}: the run in "
                    "training saves its state and stops after its current step (send it again "
                    "to stop at once)\n".encode())

    # None: a handler not set from Python, which cannot be put back; such a signal is left alone.
    previous = {s: signal.getsignal(s) for s in signals}
    for s, handler in previous.items():
        if handler is not signal.SIG_IGN and handler is not None:
            signal.signal(s, handle)
    try:
        yield
    except RunStopped as stopped:
        print(f"{program}: {stopped}; run the same command again to resume",
              file=sys.stderr, flush=True)
        raise SystemExit(128 + (received[0] if received else signal.SIGTERM)) from None
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)
        clear_stop_request()


def _lock_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.lock")


@contextmanager
def claim_run(path: Path) -> Iterator[None]:
    """Hold the lock of the run whose checkpoint is ``path`` for the ``with`` block. The lock file
    stays (removing it while another process waits on it would let two processes hold "the"
    lock); the lock itself goes with the process. Temporary files of earlier saves of this run,
    left by a process killed while saving, are removed once the lock is held.

    :raises RunInProgressError: if another process holds it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(_lock_path(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunInProgressError(
            f"another process is training the run of checkpoint {path} (it holds "
            f"{_lock_path(path)}); wait for it to finish, or give this one another "
            "checkpoint_dir") from None
    try:
        for stale in path.parent.glob(f"{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)  # no other process can be saving this run now
        yield
    finally:
        lock.release()


def _held_flock_inodes() -> set[tuple[int, int, int]] | None:
    """``(major, minor, inode)`` of every file with an flock held on this machine, from
    ``/proc/locks``; ``None`` where that file does not exist (not Linux)."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    held = set()
    for line in text.splitlines():
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK":
            try:
                major, minor, inode = fields[5].split(":")
                held.add((int(major, 16), int(minor, 16), int(inode)))
            except ValueError:
                continue
    return held


def run_in_progress(path: Path) -> bool:
    """Whether a process holds the lock of the run whose checkpoint is ``path``. On Linux this
    reads ``/proc/locks`` and never takes the lock, so a run starting at that moment is not
    refused because of the question; elsewhere it tries the lock for an instant."""
    lock_path = _lock_path(path)
    try:
        stat = lock_path.stat()
    except FileNotFoundError:
        return False
    held = _held_flock_inodes()
    if held is not None:
        return (os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino) in held
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform that cannot open folders (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(path: Path, identity: dict, state: dict) -> None:
    """Write ``state`` (tensors, state dicts and plain values) with ``identity`` to ``path``
    atomically and durably: a temporary file, flushed to disk, renamed over the old one, and the
    folder synced, so a crash or power loss leaves the old checkpoint or the new one."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as f:
        torch.save({"identity": identity, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    _fsync_folder(path.parent)


def load_checkpoint(path: Path, identity: dict) -> dict | None:
    """The state saved at ``path``, or ``None`` if there is none. A file that cannot be read (empty
    or truncated) is moved aside to ``{path}.unreadable`` with a warning, and ``None`` is returned:
    the run starts again instead of failing on every retry.

    :raises ValueError: if the file belongs to another run (it is then left alone).
    """
    import warnings

    import torch

    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # EOFError, RuntimeError, UnpicklingError: a damaged file
        aside = path.with_name(f"{path.name}.unreadable")
        os.replace(path, aside)
        warnings.warn(f"checkpoint {path} could not be read ({type(err).__name__}: {err}); moved "
                      f"it to {aside} and started the run again", RuntimeWarning, stacklevel=2)
        return None
    if not isinstance(state, dict) or state.get("identity") != identity:
        raise ValueError(f"checkpoint {path} belongs to another run "
                         f"({state.get('identity') if isinstance(state, dict) else state}), "
                         f"not to {identity}; delete it or choose another checkpoint_dir")
    return state


def checkpoint_progress(directory: str | os.PathLike) -> list[dict]:
    """How far each run with a checkpoint under ``directory`` has come: its cell (``arch_key``),
    ``dataset``, ``protocol`` name, ``seed``, ``step`` of ``total_steps``, the ``training_time``
    so far, ``seconds_per_step`` and whether a process is training it now (``running``; else it
    waits to be resumed), oldest file first. Reads the files memory-mapped, so the
    weights are not loaded."""
    import math

    import torch

    rows = []
    for path in sorted(Path(directory).glob("*.pt"), key=lambda p: p.stat().st_mtime):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # damaged: its run moves it aside when it next starts
            continue
        identity, protocol = state["identity"], state["identity"]["protocol"]
        total = math.ceil(identity["split_sizes"][0] / protocol["batch_size"]) * protocol["epochs"]
        rows.append({"file": path.name, "arch_key": identity["arch_key"],
                     "dataset": identity["dataset"], "protocol": protocol["name"],
                     "seed": identity["seed"], "step": state["step"], "total_steps": total,
                     "training_time": state["training_time"],
                     "seconds_per_step": state["training_time"] / max(state["step"], 1),
                     "running": run_in_progress(path)})
    return rows
