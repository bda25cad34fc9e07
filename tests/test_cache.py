"""The SQLite evaluation cache: lookups, concurrent writers, interrupted evaluations."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas_env.cache import (PAGE_SIZE, CacheFileError, CacheFileReplacedError, CacheLockedError,
                           EvaluationCache)
from nas_env.identity import identity_hash, run_identity
from nas_env.spaces import LargeCell
from nas_env.training import PROTOCOLS, Protocol

CHEAP = PROTOCOLS["cheap"]
REPO = Path(__file__).resolve().parents[1]


def fake_result(cell: LargeCell, seed: int = 0, accuracy: float = 90.0) -> dict:
    return {"arch": cell.to_string(), "arch_key": cell.key, "arch_index": None, "seed": seed,
            "num_seeds": 1, "validation_accuracy": accuracy, "test_accuracy": accuracy - 1,
            "val_curve": [[1.0, accuracy]], "train_loss_sum": 40.0, "loss_curve": [[1.0, 0.4]],
            "score": None, "proxy_scores": None,
            "training_time": 12.5, "evaluation_time": 2.0,
            "trainable_parameters": 10,
            "cell_parameters": 5, "flops": 20, "latency_ms": float("nan"), "diverged": False,
            "failure": None, "source": "training", "dataset": "mnist", "protocol": "cheap",
            "fidelity": 1.0, "device": "cpu", "precision": "fp32", "worker": "host:123",
            "hardware": "AMD EPYC (avx2, avx512f, avx512_bf16)", "threads": 1,
            "wait_seconds": 0.5, "run_seconds": 13.0}


DATA = {"sha256": "a" * 64, "train_count": 300, "test_count": 100, "split_seed": 0,
        "validation_fraction": 0.1}


def identity(cell: LargeCell, seed: int = 0, protocol: Protocol = CHEAP, **changes) -> dict:
    """The identity a live evaluator on the synthetic data would store ``cell`` under."""
    record = run_identity(space="large", arch_key=cell.key, dataset="mnist", data=DATA,
                          split_sizes=[270, 30, 100], protocol=protocol, seed=seed,
                          precision="fp32", device_type="cpu")
    return {**record, **changes}


def cell_number(i: int) -> LargeCell:
    """A distinct cell (by canonical key) for each ``i`` below 8 * 8 * 8."""
    return LargeCell([(0, 0, i % 8, 0), (1, 0, (i // 8) % 8, 0), (2, 0, (i // 64) % 8, 0)])


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


def _write_rows(path: str, start: int, count: int) -> None:
    cache = EvaluationCache(path)
    for i in range(start, start + count):
        cache.put(identity(cell_number(i)), fake_result(cell_number(i)))
    cache.close()


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    EvaluationCache(path).close()
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_write_rows, args=(path, start, 150)) for start in (0, 150)]
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


def _keys(path: Path) -> set[str]:
    cache = EvaluationCache(path)
    try:
        assert cache._conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row["arch_key"] for row in cache.rows()}
    finally:
        cache.close()


def _keys_of(*numbers: int) -> set[str]:
    return {cell_number(i).key for i in numbers}


def _check_out(committed: Path, path: Path) -> None:
    """What ``git checkout``/``git stash`` do to a tracked file: write the committed version to a
    new file and rename it over the path."""
    shutil.copy(committed, path.with_name("checkout.tmp"))
    os.replace(path.with_name("checkout.tmp"), path)


@pytest.mark.parametrize("how", ["replaced", "removed"])
def test_a_cache_file_replaced_under_an_open_cache_is_left_alone_and_its_rows_rescued(tmp_path,
                                                                                     how):
    path, committed = tmp_path / "c.sqlite", tmp_path / "committed.sqlite"
    _write_rows(str(path), 0, 1)
    shutil.copy(path, committed)
    cache = EvaluationCache(path)
    for i in (1, 2):
        cache.put(identity(cell_number(i)), fake_result(cell_number(i)))
    _check_out(committed, path) if how == "replaced" else path.unlink()

    with pytest.raises(CacheFileReplacedError, match=rf"c.sqlite was {how}.*open \(3, .*emptied"):
        cache.put(identity(cell_number(3)), fake_result(cell_number(3)))
    with pytest.raises(CacheFileReplacedError, match="c.sqlite was"):  # and every later call
        cache.get(identity(cell_number(1)))
    [rescued] = tmp_path.glob("c.rescued-*.sqlite")
    assert _keys(rescued) == _keys_of(0, 1, 2)
    assert _keys(path) == (_keys_of(0) if how == "replaced" else set())

    fresh = EvaluationCache(path)
    assert fresh.add_rows_from(rescued) == (2 if how == "replaced" else 3)
    assert fresh.add_rows_from(rescued) == 0
    assert fresh.get(identity(cell_number(2)))["validation_accuracy"] == 90.0
    fresh.close()
    assert _keys(path) == _keys_of(0, 1, 2)
    with pytest.raises(CacheFileError, match="missing.sqlite"):
        EvaluationCache(tmp_path / "other.sqlite").add_rows_from(tmp_path / "missing.sqlite")


@pytest.mark.parametrize("write", ["put", "add_rows_from"])
def test_a_cache_file_replaced_while_a_row_is_written_loses_no_row(tmp_path, write):
    """The file is replaced after the call's check, as its statement runs (a row stored by
    ``put``, or rows joined in one transaction); the rows written reach the rescue file."""
    path, committed, other = (tmp_path / name for name in ("c.sqlite", "committed.sqlite",
                                                           "other.sqlite"))
    _write_rows(str(path), 0, 1)
    shutil.copy(path, committed)
    _write_rows(str(other), 5, 2)
    cache = EvaluationCache(path)
    checked_out = []

    def check_out_as_the_insert_runs(statement: str) -> None:
        if statement.startswith("INSERT") and not checked_out:
            _check_out(committed, path)
            checked_out.append(statement)

    cache._conn.set_trace_callback(check_out_as_the_insert_runs)
    with pytest.raises(CacheFileReplacedError, match=r"c.sqlite was replaced.*emptied"):
        if write == "put":
            cache.put(identity(cell_number(1)), fake_result(cell_number(1)))
        else:
            cache.add_rows_from(other)
    assert checked_out
    [rescued] = tmp_path.glob("c.rescued-*.sqlite")
    assert _keys(rescued) == _keys_of(0, *((1,) if write == "put" else (5, 6)))
    assert _keys(path) == _keys_of(0)


def test_a_replaced_cache_file_still_read_by_another_process_is_reported_as_unsafe(tmp_path):
    """Its write-ahead log cannot be emptied while another connection reads the old file: the
    cache waits ``timeout`` seconds for it, then says that opening the path again is unsafe."""
    path = tmp_path / "c.sqlite"
    cache = EvaluationCache(path, timeout=0.2)
    cache.put(identity(cell_number(0)), fake_result(cell_number(0)))
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM results").fetchone() == (1,)
    cache.put(identity(cell_number(1)), fake_result(cell_number(1)))
    _check_out(path, path)

    with pytest.raises(CacheFileReplacedError, match=r"still using the old file: stop every"):
        cache.get(identity(cell_number(0)))
    reader.close()
    [rescued] = tmp_path.glob("c.rescued-*.sqlite")
    assert _keys(rescued) == _keys_of(0, 1)


SECOND_SEARCH = """
import sys
sys.path[:0] = [sys.argv[2], sys.argv[2] + "/tests"]
from test_cache import EvaluationCache, cell_number, fake_result, identity

cache = EvaluationCache(sys.argv[1])
cache.put(identity(cell_number(10)), fake_result(cell_number(10)))
print("ready", flush=True)
sys.stdin.readline()
try:
    cache.put(identity(cell_number(11)), fake_result(cell_number(11)))
except Exception as err:
    print(type(err).__name__, flush=True)
"""


def test_a_cache_file_checked_out_under_two_searches_opens_as_itself_while_they_run(tmp_path):
    """The incident this guards against: ``git stash`` under two running searches. Their file's
    write-ahead log stays at the path; it must not be applied to the file checked out there."""
    path, committed = tmp_path / "c.sqlite", tmp_path / "committed.sqlite"
    _write_rows(str(path), 0, 1)
    shutil.copy(path, committed)
    script = tmp_path / "second_search.py"
    script.write_text(SECOND_SEARCH)
    second = subprocess.Popen([sys.executable, str(script), str(path), str(REPO)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert second.stdout.readline().strip() == "ready"
        cache = EvaluationCache(path)
        for i in (1, 2):
            cache.put(identity(cell_number(i)), fake_result(cell_number(i)))
        _check_out(committed, path)
        with pytest.raises(CacheFileReplacedError, match="emptied"):
            cache.put(identity(cell_number(3)), fake_result(cell_number(3)))
        # The other search still has the old file (and its log) open.
        assert second.poll() is None
        assert _keys(path) == _keys_of(0)
        second.stdin.write("go on\n")
        second.stdin.flush()
        assert second.stdout.readline().strip() == "CacheFileReplacedError"
        assert second.wait(timeout=30) == 0
    finally:
        second.kill()
    assert _keys(path) == _keys_of(0)
    rescued = sorted(tmp_path.glob("c.rescued-*.sqlite"))
    assert len(rescued) == 2
    assert set.union(*map(_keys, rescued)) == _keys_of(0, 1, 2, 10)
    fresh = EvaluationCache(path)
    assert sum(fresh.add_rows_from(r) for r in rescued) == 3
    assert len(fresh) == 4


def test_default_path_follows_xdg_cache_home(tmp_path, monkeypatch):
    from nas_env.cache import default_cache_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "nas_env" / "evaluations.sqlite"


@pytest.mark.parametrize("filters", [(8,), (0, 8)])
def test_a_protocol_with_bad_filters_is_refused(filters):
    with pytest.raises(ValueError, match="filters"):
        Protocol(**{**CHEAP.as_dict(), "filters": filters})
