"""The evaluation cache: every live training run, stored once, in SQLite.

A live search never trains the same cell twice. Each finished evaluation is one row keyed by the
hash of its run identity (:func:`nas_env.identity.run_identity`): the space, the cell's canonical
key (two A_large cells that differ only in the order of a block's concatenation share a row), the
dataset's name and a fingerprint of its files, the split sizes, every field of the protocol, the
seed, the precision, the device type and the schema version. A row is served only to a request
with the same identity, so a result trained on other data, at another precision or by another
version of the training code is never served. Each row also records the identity itself, the
library versions and when it was written (NAS-Bench-101 keeps every evaluation with its budget and
repeat the same way).

- The file is SQLite in WAL mode: several processes may read and write one cache at once, and
  open a new one at the same moment; a writer waits for another's lock (up to ``timeout``
  seconds) instead of failing, and a lock held longer raises :class:`CacheLockedError`.
- A row is written in one transaction after its evaluation finished, so an interrupted
  evaluation leaves no row and a reader never sees half of one.
- The first result stored for an identity wins; a second ``put`` of it is ignored, except that
  :meth:`EvaluationCache.complete` may fill in what a stored row did not measure (its latency).
- Rows of a cache written before identities existed (schema 1, table ``evaluations``) are never
  served; :meth:`EvaluationCache.adopt_legacy_rows` moves them over for a dataset the caller
  vouches for (``nas-env``'s shipped caches were moved so).
- A new file has 16 KiB pages (:data:`PAGE_SIZE`); one written with other pages is read and
  extended as it is.
- A file that is not a readable cache raises :class:`CacheFileError`, which names it; the file
  is left untouched.
- A file replaced or removed at the path while a cache has it open (a ``git checkout`` or
  ``git stash`` of a tracked cache does that) is never read or written through the old
  connection again: the call that finds it (each call checks before it starts, and a write once
  more after it is done, so a row written while the file was replaced is not lost) raises
  :class:`CacheFileReplacedError` after copying every row the old file held to a rescue file
  beside it, and emptying its write-ahead log, which would otherwise be applied to the new file
  when it is next opened (where another process still reads the old file, it waits up to
  ``timeout`` seconds for it and then says so); every later call raises it too.
  :meth:`EvaluationCache.add_rows_from` puts the rescued rows back.

Default file: ``$XDG_CACHE_HOME/nas_env/evaluations.sqlite`` (``~/.cache/nas_env/...``), or the
``cache_path`` keyword of the live envs.

    from nas_env.cache import EvaluationCache
    from nas_env.identity import run_identity

    cache = EvaluationCache("runs/cache.sqlite")
    cache.get(identity)                              # an EvalResult or None
    cache.rows(space="small", dataset="mnist", protocol="cheap")  # every stored result
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sqlite3
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Iterator

from .cache_rescue import file_id as _file_id, rescue_rows
from .paths import user_cache_dir
from .identity import identity_hash, run_identity, split_sizes as _split_sizes
from .protocols import Protocol
from .results import RESULT_DEFAULTS, EvalResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    identity_hash TEXT PRIMARY KEY,
    space TEXT NOT NULL,
    dataset TEXT NOT NULL,
    protocol TEXT NOT NULL,
    arch_key TEXT NOT NULL,
    seed INTEGER NOT NULL,
    arch TEXT NOT NULL,
    result TEXT NOT NULL,
    identity TEXT NOT NULL,
    versions TEXT NOT NULL,
    created TEXT NOT NULL
)
"""
INSERT_ROW = "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
"""Stores one row of ``results`` unless its identity is there (the first result stored wins)."""
LEGACY_TABLE = "evaluations"
"""The table of a schema-1 cache, keyed by (space, dataset, protocol, protocol_hash, arch_key,
seed) only."""


class CacheFileError(RuntimeError):
    """The cache file cannot be read as an evaluation cache (corrupt, or not SQLite)."""


class CacheFileReplacedError(CacheFileError):
    """The cache file was replaced or removed at its path after the cache opened it."""


class CacheLockedError(TimeoutError):
    """Another process held the cache file's lock for longer than the cache's ``timeout``."""


def _is_lock_error(err: sqlite3.Error) -> bool:
    return (getattr(err, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY,
                                                            sqlite3.SQLITE_LOCKED)


def _switch_to_wal(conn: sqlite3.Connection, deadline: float) -> None:
    """Put the file in WAL mode (a no-op once it is). Switching a new file needs it to itself, and
    where another process is switching it at the same moment SQLite answers "locked" at once
    rather than wait (both would wait for ever), so the switch is tried again until
    ``deadline`` (``time.monotonic()``)."""
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if not _is_lock_error(err) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


PAGE_SIZE = 16384
"""Bytes per page of a new cache file, four times SQLite's default of 4 KiB, so that a page holds
several of a score protocol's long rows (its identity and every zero-cost score); a file that
exists keeps the page size it was created with."""


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/nas_env/evaluations.sqlite``, else ``~/.cache/nas_env/evaluations.sqlite``."""
    return user_cache_dir() / "evaluations.sqlite"


def _versions() -> str:
    versions = {"python": platform.python_version()}
    for package in ("torch", "nas_env"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return json.dumps(versions)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class EvaluationCache:
    """Finished evaluations in one SQLite file.

    :param path: the database file (created with its folder if missing); ``None``: the default
        under the user cache directory.
    :param timeout: seconds a writer waits for another process's lock.
    :raises CacheFileError: if ``path`` exists but is not a readable cache.
    :raises CacheLockedError: if another process held its lock for more than ``timeout``.
    :raises CacheFileReplacedError: from any later call, once the file at ``path`` is not the one
        it opened (see :meth:`add_rows_from` for the rescued rows).
    """

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 60.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            # Read before writing anything: a damaged file is reported, never modified.
            self._conn.execute("SELECT name FROM sqlite_master").fetchall()
            # Takes effect only on a new, empty file (an existing one keeps its pages).
            self._conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            _switch_to_wal(self._conn, deadline)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(SCHEMA)
            self._opened_path = self.path.resolve()
            self._opened_file = _file_id(self._opened_path)
            self._replaced: str | None = None
        except sqlite3.DatabaseError as err:
            if _is_lock_error(err):
                raise CacheLockedError(
                    f"{self.path}: another process held the cache's lock for more than "
                    f"{timeout:g} s ({err}). Wait for it to finish, or pass a longer timeout."
                ) from None
            raise CacheFileError(
                f"{self.path} is not a readable evaluation cache ({err}). It was left as it is: "
                "move it aside to start a new cache there, or pass another cache_path "
                "(--cache-path)."
            ) from None

    def __repr__(self) -> str:
        return f"EvaluationCache({str(self.path)!r})"

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, once the file at the path is checked to be the one it opened."""
        if self._replaced is None and self._conn.in_transaction:
            return self._conn  # checked when the transaction began, and again after it ends
        self._check_file()
        return self._conn

    def _check_file(self) -> None:
        """Rescue the opened file's rows and raise :class:`CacheFileReplacedError` if the file at
        the path is not the one this cache opened (or was not at an earlier check)."""
        if self._replaced is None and _file_id(self._opened_path) != self._opened_file:
            self._replaced = rescue_rows(self._conn, self.path, self._opened_path)
        if self._replaced is not None:
            raise CacheFileReplacedError(self._replaced)

    def get(self, identity: dict) -> EvalResult | None:
        """The result stored for the run ``identity`` names, with ``source="cache"``, or ``None``."""
        row = self._db.execute("SELECT result FROM results WHERE identity_hash=?",
                               (identity_hash(identity),)).fetchone()
        if row is None:
            return None
        result = _stored_result(row[0])
        result["source"] = "cache"
        return result

    def put(self, identity: dict, result: EvalResult) -> bool:
        """Store a finished ``result`` of the run ``identity`` names (one transaction); ``False``
        if a row for it was already there.

        :raises ValueError: if ``result`` is not that run's (another cell, seed or dataset).
        """
        for key in ("arch_key", "seed", "dataset"):
            if result[key] != identity[key]:
                raise ValueError(f"result has {key}={result[key]!r} but the identity it is stored "
                                 f"under has {identity[key]!r}")
        with self._transaction():
            cursor = self._db.execute(
                INSERT_ROW,
                (identity_hash(identity), identity["space"], identity["dataset"],
                 identity["protocol"]["name"], identity["arch_key"], identity["seed"],
                 result["arch"], json.dumps(result), json.dumps(identity, sort_keys=True),
                 _versions(), _now()),
            )
        return cursor.rowcount == 1

    def complete(self, identity: dict, **measured) -> None:
        """Fill in figures a stored row lacked (e.g. ``latency_ms``, measured later without
        training); the row's other figures stay as stored."""
        with self._transaction():
            row = self._db.execute("SELECT result FROM results WHERE identity_hash=?",
                                   (identity_hash(identity),)).fetchone()
            if row is None:
                raise KeyError(f"{self.path} holds no row for {identity['arch_key']} "
                               f"(seed {identity['seed']})")
            result = {**json.loads(row[0]), **measured}
            self._db.execute("UPDATE results SET result=? WHERE identity_hash=?",
                             (json.dumps(result), identity_hash(identity)))

    def add_rows_from(self, other: str | os.PathLike) -> int:
        """Copy into this cache every row of the cache file ``other`` whose identity it lacks
        (one transaction; the rows it has are kept, as the first result stored wins). Puts back
        the rows a :class:`CacheFileReplacedError` rescued, or joins two caches.

        :returns: the number of rows added.
        :raises CacheFileError: if ``other`` is missing or not an evaluation cache.
        """
        other = Path(other)
        try:
            source = sqlite3.connect(f"{other.resolve().as_uri()}?mode=ro", uri=True)
            try:
                rows = source.execute("SELECT * FROM results ORDER BY rowid").fetchall()
            finally:
                source.close()
        except sqlite3.DatabaseError as err:
            raise CacheFileError(f"{other} is not a readable evaluation cache ({err})") from None
        with self._transaction():
            before = len(self)
            self._db.executemany(INSERT_ROW, rows)
            return len(self) - before

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, every write's only way in: the file is checked when it begins
        and again once it is committed, so rows written while the file was replaced are rescued
        with the rest."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        self._check_file()

    def rows(self, space: str | None = None, dataset: str | None = None,
             protocol: str | None = None) -> Iterator[dict]:
        """Every stored row matching the filters, oldest first: the key columns, ``result`` (an
        :class:`EvalResult`), ``identity`` (the run identity, whose ``protocol`` holds the
        protocol's fields), ``versions``, ``created``."""
        where, args = [], []
        for column, value in (("space", space), ("dataset", dataset), ("protocol", protocol)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        query = "SELECT * FROM results" + (" WHERE " + " AND ".join(where) if where else "")
        cursor = self._db.execute(query + " ORDER BY rowid", args)
        names = [d[0] for d in cursor.description]
        for values in cursor:
            row = dict(zip(names, values))
            for column in ("identity", "versions"):
                row[column] = json.loads(row[column])
            row["result"] = _stored_result(row["result"])
            yield row

    def legacy_row_count(self) -> int:
        """Rows of a schema-1 cache in this file (never served; see
        :meth:`adopt_legacy_rows`)."""
        if not self._has_legacy_table():
            return 0
        return self._db.execute(f"SELECT COUNT(*) FROM {LEGACY_TABLE}").fetchone()[0]

    def _has_legacy_table(self) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                (LEGACY_TABLE,)).fetchone() is not None

    def adopt_legacy_rows(self, dataset: str, data: dict, validation_fraction: float,
                          drop_legacy: bool = False) -> int:
        """Move the schema-1 rows of ``dataset`` into this cache under full identities, for rows
        the caller knows were trained on the files that ``data`` fingerprints (see
        :func:`nas_env.data.data_record`); the rows' precision and device come from each row's
        own record, the split sizes from its protocol and ``data``. Rows already present are
        kept. With ``drop_legacy``, the schema-1 table is removed once every row of it was moved.

        :returns: the number of rows added.
        """
        if not self._has_legacy_table():
            return 0
        added = 0
        with self._transaction():
            legacy = self._db.execute(
                f"SELECT space, dataset, arch_key, seed, arch, result, protocol_record, versions, "
                f"created FROM {LEGACY_TABLE} WHERE dataset=? ORDER BY rowid", (dataset,)).fetchall()
            for space, name, arch_key, seed, arch, result, record, versions, created in legacy:
                result_record, protocol = json.loads(result), Protocol.from_dict(json.loads(record))
                identity = run_identity(
                    space=space, arch_key=arch_key, dataset=name, data=data,
                    split_sizes=_split_sizes(data, protocol, validation_fraction),
                    protocol=protocol, seed=seed, precision=result_record["precision"],
                    device_type=result_record["device"])
                cursor = self._db.execute(
                    INSERT_ROW,
                    (identity_hash(identity), space, name, protocol.name, arch_key, seed, arch,
                     result, json.dumps(identity, sort_keys=True), versions, created))
                added += cursor.rowcount
            left = self._db.execute(f"SELECT COUNT(*) FROM {LEGACY_TABLE} WHERE dataset<>?",
                                    (dataset,)).fetchone()[0]
            if drop_legacy and not left:
                self._db.execute(f"DROP TABLE {LEGACY_TABLE}")
        return added

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._conn.close()


def open_cache(cache) -> EvaluationCache | None:
    """The cache an evaluator's ``cache`` keyword names: an :class:`EvaluationCache` itself, a
    path to one, ``None`` for the default file, or ``False`` for no cache (``None`` returned)."""
    if cache is False:
        return None
    if isinstance(cache, EvaluationCache):
        return cache
    return EvaluationCache(cache)


def _stored_result(text: str) -> dict:
    """A stored row's result, with the keys added since it was written at their defaults and an
    unmeasured latency as ``None`` (rows written before that was the convention hold NaN)."""
    result = {**RESULT_DEFAULTS, **json.loads(text)}
    latency = result.get("latency_ms")
    if isinstance(latency, float) and math.isnan(latency):
        result["latency_ms"] = None
    return result
