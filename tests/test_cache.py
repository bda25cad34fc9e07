"""The SQLite evaluation cache: lookups, concurrent writers, interrupted evaluations (a cache file
replaced under a running search: ``test_cache_replaced.py``)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas_env.cache import PAGE_SIZE, CacheFileError, CacheLockedError, EvaluationCache
from nas_env.identity import identity_hash
from nas_env.spaces import LargeCell
from nas_env.training import Protocol

from cache_rows import CHEAP, DATA, cell_number, fake_result, identity, write_rows

REPO = Path(__file__).resolve().parents[1]


def test_a_stored_result_comes_back_marked_as_cached(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = cell_number(3)
    assert cache.get(identity(cell)) is None
    assert cache.put(identity(cell), fake_result(cell))
    got = cache.get(identity(cell))
    # An unmeasured latency stored as NaN (as rows written before None meant that) reads as None.
    assert got == {**fake_result(cell), "source": "cache", "latency_ms": None}


def test_a_row_stored_before_the_worker_keys_reads_as_not_trained_by_a_worker(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = cell_number(4)
    old = {k: v for k, v in fake_result(cell).items()
           if k not in ("worker", "hardware", "threads", "wait_seconds", "run_seconds",
                        "train_loss_sum", "loss_curve")}
    cache.put(identity(cell), old)
    got = cache.get(identity(cell))
    assert (got["worker"], got["wait_seconds"], got["run_seconds"]) == (None, 0.0, 0.0)
    assert got["hardware"] is None and got["threads"] is None
    assert got["loss_curve"] == [] and got["train_loss_sum"] is None


def test_the_key_is_canonical_and_covers_every_condition_of_the_run(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = LargeCell([(0, 0, "conv3x3", "identity")])
    swapped = LargeCell([(0, 0, "identity", "conv3x3")])
    cache.put(identity(cell), fake_result(cell))
    assert cache.get(identity(swapped)) is not None
    renamed = Protocol(**{**CHEAP.as_dict(), "train_images": 100})
    read_late = Protocol(**{**CHEAP.as_dict(), "signal": "late_loss"})
    finer_loss = Protocol(**{**CHEAP.as_dict(), "loss_points_per_epoch": 2})
    other_data = {**DATA, "sha256": "b" * 64}  # same name, other files
    for changed in (identity(cell, seed=1), identity(cell, dataset="fashion_mnist"),
                    identity(cell, space="small"), identity(cell, protocol=renamed),
                    identity(cell, protocol=read_late), identity(cell, protocol=finer_loss),
                    identity(cell, data=other_data), identity(cell, split_sizes=[200, 30, 100]),
                    identity(cell, precision="bf16"), identity(cell, device_type="cuda"),
                    identity(cell, schema=1)):
        assert identity_hash(changed) != identity_hash(identity(cell))
        assert cache.get(changed) is None


def test_a_result_is_refused_under_another_runs_identity(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    with pytest.raises(ValueError, match="seed"):
        cache.put(identity(cell_number(1), seed=1), fake_result(cell_number(1), seed=0))


def test_a_row_without_latency_is_completed_in_place(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = cell_number(2)
    cache.put(identity(cell), fake_result(cell))
    cache.complete(identity(cell), latency_ms=1.5)
    got = cache.get(identity(cell))
    assert got["latency_ms"] == 1.5 and got["validation_accuracy"] == 90.0
    with pytest.raises(KeyError):
        cache.complete(identity(cell_number(5)), latency_ms=1.0)


LEGACY_SCHEMA = """
CREATE TABLE evaluations (space TEXT, dataset TEXT, protocol TEXT, protocol_hash TEXT,
    arch_key TEXT, seed INTEGER, arch TEXT, result TEXT, protocol_record TEXT, versions TEXT,
    created TEXT, PRIMARY KEY (space, dataset, protocol, protocol_hash, arch_key, seed))
"""


def test_rows_of_a_cache_without_identities_are_served_only_once_adopted(tmp_path):
    import json
    import sqlite3

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(LEGACY_SCHEMA)
    cell = cell_number(7)
    conn.execute("INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 ("large", "mnist", "cheap", "x", cell.key, 0, cell.to_string(),
                  json.dumps(fake_result(cell)), json.dumps(CHEAP.as_dict()), "{}", "2026-01-01"))
    conn.commit()
    conn.close()
    cache = EvaluationCache(path)
    assert cache.legacy_row_count() == 1 and len(cache) == 0
    wanted = identity(cell, split_sizes=[270, 30, 100])
    assert cache.get(wanted) is None  # never served as it was stored
    assert cache.adopt_legacy_rows("mnist", DATA, 0.1, drop_legacy=True) == 1
    assert cache.get(wanted)["validation_accuracy"] == 90.0
    assert cache.legacy_row_count() == 0


def _page_size(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA page_size").fetchone()[0]


def test_a_new_cache_has_large_pages_and_an_old_one_keeps_its_own(tmp_path):
    EvaluationCache(tmp_path / "new.sqlite").put(identity(cell_number(0)),
                                                 fake_result(cell_number(0)))
    assert _page_size(tmp_path / "new.sqlite") == PAGE_SIZE == 16384
    # A file written with SQLite's default pages (as caches were before) is served and extended
    # without being rewritten.
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
    first = EvaluationCache(old)
    first.put(identity(cell_number(1)), fake_result(cell_number(1)))
    first.close()
    again = EvaluationCache(old)
    again.put(identity(cell_number(2)), fake_result(cell_number(2)))
    assert again.get(identity(cell_number(1)))["validation_accuracy"] == 90.0
    assert len(again) == 2
    again.close()
    assert _page_size(old) == 4096


def test_a_corrupt_cache_file_is_named_and_left_untouched(tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(CacheFileError, match="broken.sqlite.*move it aside"):
        EvaluationCache(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.sqlite"]


def test_the_first_result_for_a_key_wins(tmp_path):
    cache = EvaluationCache(tmp_path / "c.sqlite")
    cell = cell_number(1)
    assert cache.put(identity(cell), fake_result(cell, accuracy=90.0))
    assert not cache.put(identity(cell), fake_result(cell, accuracy=50.0))
    assert cache.get(identity(cell))["validation_accuracy"] == 90.0
    assert len(cache) == 1


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    EvaluationCache(path).close()
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=write_rows, args=(path, start, 150)) for start in (0, 150)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    cache = EvaluationCache(path)
    assert len(cache) == 300
    assert {row["arch_key"] for row in cache.rows()} == {cell_number(i).key for i in range(300)}


def _open_new_caches(folder: str, count: int, barrier) -> None:
    for i in range(count):
        barrier.wait(timeout=60)
        EvaluationCache(os.path.join(folder, f"new{i}.sqlite")).close()


def test_processes_opening_one_new_cache_at_once_all_get_it(tmp_path):
    # Switching a new file to WAL mode at the same moment as another process can make SQLite
    # answer "database is locked" at once (two searches started on a new cache); on the code
    # without the retry this test fails in some runs, the next test in every run.
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    workers = [ctx.Process(target=_open_new_caches, args=(str(tmp_path), 40, barrier))
               for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    for i in range(40):
        conn = sqlite3.connect(tmp_path / f"new{i}.sqlite")
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        conn.close()


def test_switching_to_wal_is_tried_again_while_another_process_holds_the_file(tmp_path,
                                                                              monkeypatch):
    class Contended:
        """A connection whose first two WAL switches meet another process's lock."""

        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn, self.refusals = conn, 2

        def execute(self, sql: str, *args):
            if sql == "PRAGMA journal_mode=WAL" and self.refusals:
                self.refusals -= 1
                err = sqlite3.OperationalError("database is locked")
                err.sqlite_errorcode = sqlite3.SQLITE_BUSY
                raise err
            return self.conn.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self.conn, name)

    connect = sqlite3.connect
    opened = []
    monkeypatch.setattr(sqlite3, "connect",
                        lambda *a, **k: opened.append(Contended(connect(*a, **k))) or opened[-1])
    cache = EvaluationCache(tmp_path / "c.sqlite")
    assert opened[0].refusals == 0 and len(cache) == 0
    assert cache._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_lock_held_past_the_timeout_is_named_as_such(tmp_path):
    path = tmp_path / "busy.sqlite"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN")
    other.execute("SELECT * FROM t").fetchall()  # holds a read lock on a file not yet in WAL mode
    with pytest.raises(CacheLockedError, match="busy.sqlite.*held the cache's lock for more than "
                                               "0.2 s"):
        EvaluationCache(path, timeout=0.2)
    other.execute("COMMIT")
    other.close()
    assert len(EvaluationCache(path)) == 0  # nothing was damaged: it opens once the lock is gone


KILLED_EVALUATION = """
import sys
from nas_env.evaluators import LiveEvaluator
from nas_env.spaces import LargeCell
from nas_env.training import Protocol

slow = Protocol("slow", epochs=200, lr=1e-3, schedule="constant", batch_size=8,
                checkpoints_per_epoch=1, filters=(4, 8), fc_units=16, precision="fp32")
evaluator = LiveEvaluator("large", "mnist", slow, data_root=sys.argv[1], cache=sys.argv[2])
evaluator.evaluate(LargeCell([(0, 0, "conv3x3", "identity")]))
"""


def test_a_killed_evaluation_leaves_no_row(tmp_path, synthetic_data_root):
    path = tmp_path / "c.sqlite"
    script = tmp_path / "evaluate.py"
    script.write_text(KILLED_EVALUATION)
    proc = subprocess.Popen([sys.executable, str(script), str(synthetic_data_root), str(path)],
                            cwd=REPO)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:  # the cache opens before training
        time.sleep(0.2)
    time.sleep(3)  # well into the 200 epochs
    assert proc.poll() is None, "the evaluation finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = EvaluationCache(path)
    assert len(cache) == 0
    # The file is intact: another writer can use it at once.
    cache.put(identity(cell_number(0)), fake_result(cell_number(0)))
    assert len(cache) == 1


def test_default_path_follows_xdg_cache_home(tmp_path, monkeypatch):
    from nas_env.cache import default_cache_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "nas_env" / "evaluations.sqlite"


@pytest.mark.parametrize("filters", [(8,), (0, 8)])
def test_a_protocol_with_bad_filters_is_refused(filters):
    with pytest.raises(ValueError, match="filters"):
        Protocol(**{**CHEAP.as_dict(), "filters": filters})
