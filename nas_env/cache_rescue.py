"""What an evaluation cache does when its file is replaced or removed under it.

A ``git checkout`` or ``git stash`` of a tracked cache writes a new file and renames it over the
path, while a search may still hold the old file open. :class:`nas_env.cache.EvaluationCache`
compares :func:`file_id` of its path with the one it opened before each call (and once more after
each write), and on a difference calls :func:`rescue_rows`: the rows of the old file are copied
beside the path, and the old file's write-ahead log, the ``-wal`` at the path that SQLite would
otherwise apply to the new file when it is next opened, is emptied.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
from pathlib import Path


def file_id(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of the file at ``path``, or ``None`` where there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def rescue_rows(conn: sqlite3.Connection, path: Path, opened_path: Path) -> str:
    """Copy every row of the file ``conn`` has open to ``NAME.rescued-TIME-PID.SUFFIX`` beside
    ``path``, empty that file's write-ahead log (waiting up to the connection's timeout for any
    other process reading it), close ``conn``, and return the message of the error to raise: what
    happened, where the rows are, whether opening ``path`` again is safe, and how to put the rows
    back. ``opened_path`` is ``path`` resolved when the cache opened it."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    rescue = path.with_name(f"{path.stem}.rescued-{stamp}-{os.getpid()}{path.suffix}")
    target = sqlite3.connect(rescue)
    try:
        conn.backup(target)
        rows = target.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    finally:
        target.close()
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    conn.close()
    what = "removed" if file_id(opened_path) is None else "replaced by another file"
    wal = (f"Its write-ahead log {path}-wal was emptied, so opening {path} again is safe"
           if not busy else
           f"Another process is still using the old file: stop every process that uses {path} "
           f"before opening it again, or its write-ahead log ({path}-wal) may be applied to the "
           "new file")
    return (f"{path} was {what} after this cache opened it (a git checkout or stash of a tracked "
            f"cache does that), so this cache reads and writes nothing more. The rows of the file "
            f"it had open ({rows}, every row this process wrote included) were copied to "
            f"{rescue}. {wal}. To put the rows back: "
            f"EvaluationCache({str(path)!r}).add_rows_from({str(rescue)!r}).")
