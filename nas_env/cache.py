"""The evaluation cache: every live training run, stored once, in SQLite.

A live search never trains the same cell twice. Each finished evaluation is one row keyed by
``(space, dataset, protocol, protocol_hash, arch_key, seed)``: the canonical key, so two A_large
cells that differ only in the order of a block's concatenation share a row, and the hash of the
whole protocol record, so a custom protocol that reuses a name never reads another's results.
Each row also records the protocol, the library versions and when it was written (NAS-Bench-101
keeps every evaluation with its budget and repeat the same way).

- The file is SQLite in WAL mode: several processes may read and write one cache at once; a
  writer waits for another's lock (up to ``timeout`` seconds) instead of failing.
- A row is written in one transaction after its evaluation finished, so an interrupted
  evaluation leaves no row and a reader never sees half of one.
- The first result stored for a key wins; a second ``put`` of the same key is ignored.

Default file: ``$XDG_CACHE_HOME/nas_env/evaluations.sqlite`` (``~/.cache/nas_env/...``), or the
``cache_path`` keyword of the live envs.

    from nas_env.cache import EvaluationCache

    cache = EvaluationCache("runs/cache.sqlite")
    cache.get("large", "mnist", protocol, cell.key, seed=0)     # an EvalResult or None
    cache.rows(space="small", dataset="mnist", protocol="cheap")  # every stored result
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sqlite3
from pathlib import Path
from typing import Iterator

from .data import user_cache_dir
from .results import NOT_TRAINED, EvalResult
from .training import Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    space TEXT NOT NULL,
    dataset TEXT NOT NULL,
    protocol TEXT NOT NULL,
    protocol_hash TEXT NOT NULL,
    arch_key TEXT NOT NULL,
    seed INTEGER NOT NULL,
    arch TEXT NOT NULL,
    result TEXT NOT NULL,
    protocol_record TEXT NOT NULL,
    versions TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (space, dataset, protocol, protocol_hash, arch_key, seed)
)
"""


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/nas_env/evaluations.sqlite``, else ``~/.cache/nas_env/evaluations.sqlite``."""
    return user_cache_dir() / "evaluations.sqlite"


def protocol_hash(protocol: Protocol) -> str:
    """A short fingerprint of every field of ``protocol``."""
    text = json.dumps(protocol.as_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _versions() -> str:
    import torch

    return json.dumps({"python": platform.python_version(), "torch": torch.__version__})


class EvaluationCache:
    """Finished evaluations in one SQLite file.

    :param path: the database file (created with its folder if missing); ``None``: the default
        under the user cache directory.
    :param timeout: seconds a writer waits for another process's lock.
    """

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 60.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(SCHEMA)

    def __repr__(self) -> str:
        return f"EvaluationCache({str(self.path)!r})"

    def get(self, space: str, dataset: str, protocol: Protocol, arch_key: str,
            seed: int) -> EvalResult | None:
        """The stored result for this key, with ``source="cache"``, or ``None``."""
        row = self._conn.execute(
            "SELECT result FROM evaluations WHERE space=? AND dataset=? AND protocol=? AND "
            "protocol_hash=? AND arch_key=? AND seed=?",
            (space, dataset, protocol.name, protocol_hash(protocol), arch_key, seed),
        ).fetchone()
        if row is None:
            return None
        result = {**NOT_TRAINED, "evaluation_time": None, **json.loads(row[0])}
        result["source"] = "cache"
        return result

    def put(self, space: str, protocol: Protocol, result: EvalResult) -> bool:
        """Store a finished ``result`` (one transaction); ``False`` if the key was already there."""
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (space, result["dataset"], protocol.name, protocol_hash(protocol), result["arch_key"],
             int(result["seed"]), result["arch"], json.dumps(result),
             json.dumps(protocol.as_dict()), _versions(),
             _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")),
        )
        return cursor.rowcount == 1

    def rows(self, space: str | None = None, dataset: str | None = None,
             protocol: str | None = None) -> Iterator[dict]:
        """Every stored row matching the filters, oldest first: the key columns, ``result`` (an
        :class:`EvalResult`), ``protocol_record`` (the protocol's fields), ``versions``, ``created``."""
        where, args = [], []
        for column, value in (("space", space), ("dataset", dataset), ("protocol", protocol)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        query = "SELECT * FROM evaluations" + (" WHERE " + " AND ".join(where) if where else "")
        cursor = self._conn.execute(query + " ORDER BY rowid", args)
        names = [d[0] for d in cursor.description]
        for values in cursor:
            row = dict(zip(names, values))
            for column in ("result", "protocol_record", "versions"):
                row[column] = json.loads(row[column])
            yield row

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]

    def close(self) -> None:
        self._conn.close()
