"""The searches of a study, each one ``nas-env search`` into its own folder: their state on disk
and a runner that runs them one or several at a time, resumably (``experiments/exp3_study.py``).

A search's folder holds its ``summary.json`` once it has finished and ``progress.csv`` while it
runs; :func:`state` reads them against the settings the study expects. :func:`run_jobs` runs the
searches in this process or ``workers`` subprocesses at once, appends each run's wall time to
``attempts.csv`` in its folder, and on Ctrl-C or SIGTERM lets the searches under way save their
state before it stops.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from nas_env.table_builder import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
"""The repository's root, put on the subprocesses' ``PYTHONPATH`` so they import this checkout."""


@dataclass
class Job:
    """One search of the study: ``nas-env search`` with ``argv``, into ``parent/{name}``;
    ``expect`` holds the settings its ``summary.json`` must record to be this search
    (:func:`state`)."""

    method: str
    seed: int
    parent: Path
    argv: list[str]
    expect: dict

    @property
    def name(self) -> str:
        return f"{self.method}_seed{self.seed}"

    @property
    def folder(self) -> Path:
        return self.parent / self.name


def state(job: Job) -> str:
    """``finished``, ``to run``, ``partial (progress.csv: N of M cells)`` (started before, by its
    ``attempts.csv``, and not finished: rerun, replaying; ``progress.csv`` is rewritten every 20
    cells, so N lags the cache by up to 19), ``shorter`` (finished with fewer cells: rerun,
    replaying, to extend it), or what differs from the study's settings."""
    path = job.folder / "summary.json"
    if not path.exists():
        progress = job.folder / "progress.csv"
        if progress.exists():
            with progress.open() as rows:
                saved = max(sum(1 for _ in rows) - 1, 0)
        elif (job.folder / "attempts.csv").exists():
            saved = 0
        else:
            return "to run"
        return f"partial (progress.csv: {saved} of {job.expect['cells']} cells)"
    summary = json.loads(path.read_text())
    # A summary without "device" predates its recording; the cache still keeps the devices apart.
    differs = [f"{k}={summary.get(k)!r}" for k, v in job.expect.items()
               if k not in ("cells", "ppo_config") and summary.get(k) != v
               and (k != "device" or k in summary)]
    config = summary.get("ppo_config") or {}
    differs += [f"PPO's {k}={config.get(k)!r}" for k, v in job.expect.get("ppo_config", {}).items()
                if config.get(k) != v]
    if differs or summary["cells"] > job.expect["cells"]:
        return f"holds another search ({', '.join(differs) or 'cells=' + str(summary['cells'])})"
    return "shorter" if summary["cells"] < job.expect["cells"] else "finished"


def record_attempt(job: Job, started: float, seconds: float, status: str) -> None:
    """Append one run of ``job`` to its folder's ``attempts.csv``."""
    path = job.folder / "attempts.csv"
    rows = pd.read_csv(path).to_dict("records") if path.exists() else []
    trained = json.loads((job.folder / "summary.json").read_text()).get("sources", {}).get(
        "training", 0) if status == "finished" else ""
    when = datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds")
    rows.append({"started": when, "seconds": round(seconds, 3), "status": status,
                 "trained": trained})
    atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))


def run_in_process(job: Job, log: Path) -> int:
    """Run ``job`` in this process, its output appended to ``log``; its exit status."""
    from nas_env.commands.search import main as search_main

    with open(log, "a") as out, redirect_stdout(out), redirect_stderr(out):
        try:
            search_main(job.argv, prog=f"nas-env search ({job.name})")
            return 0
        except SystemExit as exited:
            if isinstance(exited.code, str):
                print(exited.code, flush=True)
            return exited.code if isinstance(exited.code, int) else 1
        except Exception:  # noqa: BLE001  (the study goes on; the log has the traceback)
            traceback.print_exc()
            return 1


def outcome(code: int) -> str:
    """What a search's exit status ``code`` means: finished, stopped (130, 143) or failed."""
    return "finished" if code == 0 else "stopped" if code in (130, 143) else f"failed ({code})"


def run_jobs(jobs: list[Job], workers: int) -> list[str]:
    """Run ``jobs``: in this process one at a time, else ``workers`` processes at once. Returns
    the names of those that failed; a stop (Ctrl-C, SIGTERM) ends the study with status 130 once
    the searches under way have saved their state. Each search's output goes to
    ``logs/{name}.log`` beside its folder."""
    failed, stopped, pending, running = [], [], list(jobs), {}

    def done(job: Job, started: float, code: int) -> None:
        record_attempt(job, started, time.time() - started, outcome(code))
        print(f"{job.folder}: {outcome(code)} after {time.time() - started:.0f} s",
              flush=True)
        (stopped if code in (130, 143) else failed if code else []).append(job.name)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        while (pending and not stopped) or running:
            while pending and not stopped and len(running) < workers:
                job, started = pending.pop(0), time.time()
                job.folder.mkdir(parents=True, exist_ok=True)
                (job.parent / "logs").mkdir(exist_ok=True)
                log_path = job.parent / "logs" / f"{job.name}.log"
                print(f"[{len(jobs) - len(pending)}/{len(jobs)}] {job.folder}: running, log "
                      f"{log_path}", flush=True)
                if workers == 1:
                    try:
                        done(job, started, run_in_process(job, log_path))
                    except KeyboardInterrupt:
                        done(job, started, 130)
                    continue
                log = open(log_path, "a")
                process = subprocess.Popen([sys.executable, "-m", "nas_env", "search", *job.argv],
                                           stdout=log, stderr=subprocess.STDOUT,
                                           env={**os.environ, "PYTHONPATH": path})
                running[process] = (job, started, log)
            time.sleep(0.5 if running else 0)
            for process in [p for p in running if p.poll() is not None]:
                job, started, log = running.pop(process)
                log.close()
                done(job, started, process.returncode)
    except KeyboardInterrupt:
        for process in running:
            process.send_signal(signal.SIGTERM)  # each saves its run in training and stops
        for process, (job, started, log) in running.items():
            process.wait()
            log.close()
            done(job, started, 130)
        stopped.append("all")
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopped:
        raise SystemExit(130)
    return failed
