"""The interface every backend answers: train the jobs of a batch, yield each outcome as it
finishes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Iterator, Sequence

from ..run_checkpoint import stop_requested
from .jobs import Job, Outcome, TrainingSpec


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
        from ..training import resolve_device

        return resolve_device(device).type

    def _stop_applies(self) -> bool:
        """A stop request is in force and the jobs have somewhere to save their state."""
        return self.spec.checkpoint_dir is not None and stop_requested()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"
