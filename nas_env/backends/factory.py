"""The backend a keyword names: ``"inline"``, ``"process"``, ``"ray"`` or an instance."""

from __future__ import annotations

from typing import Any

from .base import EvalBackend
from .inline import InlineBackend
from .process_pool import ProcessBackend
from .ray_tasks import RayBackend

BACKENDS = ("inline", "process", "ray")


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

