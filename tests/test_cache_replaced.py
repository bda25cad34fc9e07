"""A cache file replaced or removed under the processes that have it open (a ``git checkout`` or
``git stash`` of a tracked cache under running searches): the file now at the path opens as itself,
and every row of the old file is rescued beside it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nas_env.cache import CacheFileError, CacheFileReplacedError, EvaluationCache

from cache_rows import cell_number, fake_result, identity, write_rows

REPO = Path(__file__).resolve().parents[1]


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
    write_rows(str(path), 0, 1)
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
    write_rows(str(path), 0, 1)
    shutil.copy(path, committed)
    write_rows(str(other), 5, 2)
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
from cache_rows import EvaluationCache, cell_number, fake_result, identity

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
    write_rows(str(path), 0, 1)
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
