"""``experiments/check_cache.py``: a cache about to be committed has its write-ahead log folded in,
passes SQLite's integrity check, keeps every row of a git revision, stores each row under its own
identity's hash and has no rescued rows waiting beside it; each failure is named."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess

import pytest

from nas_env.cache import EvaluationCache

from cache_rows import cell_number, fake_result, identity

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(folder, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
                   cwd=folder, check=True, capture_output=True)


@pytest.fixture
def committed(tmp_path):
    """A cache of cells 0 and 1, committed in a git repository of its own."""
    path = tmp_path / "cache.sqlite"
    cache = EvaluationCache(path)
    for i in (0, 1):
        cache.put(identity(cell_number(i), seed=i), fake_result(cell_number(i), seed=i))
    cache.close()
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "cache.sqlite")
    git(tmp_path, "commit", "-q", "-m", "two rows")
    return path


def test_a_grown_cache_passes_and_its_log_is_folded_into_the_file(committed, load_script, capsys):
    cache = EvaluationCache(committed)  # still open, as a search that has just written a row
    cache.put(identity(cell_number(2)), fake_result(cell_number(2)))
    wal = committed.with_name("cache.sqlite-wal")
    assert wal.stat().st_size > 0
    assert load_script("check_cache").main([str(committed), "--against", "HEAD"]) == 0
    out = capsys.readouterr().out
    assert wal.stat().st_size == 0  # every row is in the file git commits
    assert "3 rows\n  large mnist cheap: 3\nseeds: 0 (2), 1 (1)\n" in out
    assert "hardware: AMD EPYC (avx2, avx512f, avx512_bf16) (3)" in out
    assert "identity fields that differ between rows: arch_key, seed" in out
    assert "rows at HEAD: 2; added since: 1" in out and out.endswith("all checks passed\n")
    cache.close()


def test_a_lost_row_a_wrong_hash_and_rescued_rows_are_each_named(committed, load_script, capsys):
    check = load_script("check_cache")
    with contextlib.closing(sqlite3.connect(committed)) as conn, conn:
        conn.execute("DELETE FROM results WHERE seed = 1")
    assert check.main([str(committed), "--against", "HEAD"]) == 1
    assert "1 of the 2 rows it held at HEAD are gone" in capsys.readouterr().err
    assert check.main([str(committed)]) == 0  # without --against, nothing is compared

    with contextlib.closing(sqlite3.connect(committed)) as conn, conn:
        conn.execute("UPDATE results SET identity_hash = 'f00d'")
    assert check.main([str(committed)]) == 1
    assert "1 rows are not stored under the hash of their own identity (the first: f00d)" in \
        capsys.readouterr().err

    git(committed.parent, "checkout", "-q", "--", "cache.sqlite")
    rescued = committed.with_name("cache.rescued-20261207T120000-123.sqlite")
    shutil.copy(committed, rescued)
    assert check.main([str(committed), "--against", "HEAD"]) == 1
    err = capsys.readouterr().err
    assert "rows rescued from a replaced file wait beside it (cache.rescued-2026" in err
    assert "add_rows_from(RESCUED)" in err


def test_a_reader_in_the_middle_of_a_transaction_is_reported(committed, load_script, capsys):
    writer = EvaluationCache(committed)
    writer.put(identity(cell_number(2)), fake_result(cell_number(2)))
    reader = sqlite3.connect(committed)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM results").fetchone()  # a snapshot that needs the log
    try:
        assert load_script("check_cache").main([str(committed), "--wait", "0.2"]) == 1
        assert "its write-ahead log could not be folded into it" in capsys.readouterr().err
    finally:
        reader.close()
        writer.close()


def test_a_path_that_is_no_cache_is_refused(tmp_path, load_script, capsys):
    check = load_script("check_cache")
    with pytest.raises(SystemExit) as exited:
        check.main([str(tmp_path / "missing.sqlite")])
    assert exited.value.code == 2 and "missing.sqlite: no such file" in capsys.readouterr().err
    (tmp_path / "notes.sqlite").write_text("not a database, though named like one\n" * 100)
    assert check.main([str(tmp_path / "notes.sqlite")]) == 1
    assert "notes.sqlite is not a readable cache" in capsys.readouterr().err
    cache = EvaluationCache(tmp_path / "untracked.sqlite")
    cache.close()
    with pytest.raises(SystemExit) as exited:
        check.main([str(tmp_path / "untracked.sqlite"), "--against", "HEAD"])
    assert exited.value.code == 2 and "is not in a git checkout" in capsys.readouterr().err
