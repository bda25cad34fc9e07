"""The backends' old home, kept so that ``from nas_env.parallel import ...`` works.

Everything here is re-exported from :mod:`nas_env.backends`, where it lives now, one module per
job: ``backends.jobs`` (``Job``, ``TrainingSpec``, ``run_job``), ``backends.base``
(``EvalBackend``), ``backends.inline``, ``backends.process_pool`` (``ProcessBackend``),
``backends.worker`` (a pool worker's start-up and signal handling), ``backends.ray_tasks``
(``RayBackend``, ``import_ray``, ``RayClusterError``) and ``backends.factory``
(``make_backend``). New code imports from those modules.

To replace what a backend calls (a test's ``monkeypatch.setattr(module, "import_ray", ...)``),
patch the module that holds it: the backends look names up there, not here.
"""

from .backends.base import EvalBackend
from .backends.factory import BACKENDS, make_backend
from .backends.inline import InlineBackend
from .backends.jobs import (DEFAULT_MAX_RETRIES, IN_PROGRESS, STOP_POLL_SECONDS, Job, Outcome,
                            TrainingSpec, run_job, worker_name)
from .backends.process_pool import ProcessBackend
from .backends.ray_tasks import RAY_INSTALL, RayBackend, RayClusterError, import_ray
from .backends.worker import ORPHAN_CHECK_SECONDS

__all__ = ["BACKENDS", "DEFAULT_MAX_RETRIES", "IN_PROGRESS", "ORPHAN_CHECK_SECONDS",
           "RAY_INSTALL", "STOP_POLL_SECONDS", "EvalBackend", "InlineBackend", "Job", "Outcome",
           "ProcessBackend", "RayBackend", "RayClusterError", "TrainingSpec", "import_ray",
           "make_backend", "run_job", "worker_name"]
