"""The inline backend: one job at a time in the driver."""

from __future__ import annotations

import time
from typing import Iterator, Sequence

from .base import EvalBackend
from .jobs import Job, Outcome, run_job


class InlineBackend(EvalBackend):
    """One job at a time in the driver, with the evaluator's own copy of the dataset."""

    name = "inline"
    workers = 1

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]:
        data = self._load_data()
        for i, job in enumerate(jobs):
            yield i, run_job(self.spec, data, job, time.time())
