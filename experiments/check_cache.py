"""Check an evaluation cache before committing it, and say what its rows hold.

A long search grows a cache that git tracks (the shipped ones under reward_tables/evaluations/).
Stop every process that writes it, then:

    python experiments/check_cache.py reward_tables/evaluations/large_mnist_loss12k.sqlite \
        --against HEAD

It folds the write-ahead log into the file (the ``-wal`` beside it is ignored by git, so rows
still in it would not be committed), runs SQLite's integrity check, checks that each row is
stored under the hash of its own run identity, that no ``.rescued-`` file of rows copied out of a
replaced file waits beside it, and with ``--against REV`` that every row the file held at that git
revision is still there. It prints the rows by space, dataset and protocol, the training seeds,
package versions, precisions, device types and CPUs they record, and the fields of their
identities that differ between rows. Exit status 0 when every check passes, 1 otherwise, 2 for a
path that holds no file.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from nas_env.identity import identity_hash


def _hashes(conn: sqlite3.Connection) -> set[str]:
    return {h for (h,) in conn.execute("SELECT identity_hash FROM results")}


def rows_at_revision(path: Path, revision: str) -> set[str] | None:
    """The identity hashes of the rows the file at ``path`` held at git revision ``revision``;
    ``None`` where git has no such file there.

    :raises subprocess.CalledProcessError: if ``path`` is not in a git checkout.
    """
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent,
                          capture_output=True, text=True, check=True).stdout.strip()
    name = path.resolve().relative_to(Path(root).resolve()).as_posix()
    shown = subprocess.run(["git", "show", f"{revision}:{name}"], cwd=root, capture_output=True)
    if shown.returncode:
        return None
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "old.sqlite"
        old.write_bytes(shown.stdout)
        with contextlib.closing(sqlite3.connect(old)) as conn:
            return _hashes(conn)


def summary(conn: sqlite3.Connection) -> list[str]:
    """Lines on what the cache's rows hold."""
    rows = conn.execute("SELECT space, dataset, protocol, seed, versions, result, identity "
                        "FROM results").fetchall()
    lines = [f"{len(rows)} rows"]
    groups = collections.Counter(" ".join(row[:3]) for row in rows)  # space dataset protocol
    lines += [f"  {group}: {n}" for group, n in sorted(groups.items())]
    results = [json.loads(result) for *_, result, _ in rows]
    identities = [json.loads(identity) for *_, identity in rows]
    for name, values in (("seeds", [row[3] for row in rows]),
                         ("versions", [row[4] for row in rows]),
                         ("precision", [r.get("precision") for r in results]),
                         ("device", [r.get("device") for r in results]),
                         ("hardware", [r.get("hardware") for r in results])):
        counts = collections.Counter(values)
        lines.append(f"{name}: " + ", ".join(f"{value} ({n})" for value, n in
                                              sorted(counts.items(), key=lambda kv: str(kv[0]))))
    fields = sorted(set().union(*identities)) if identities else []
    varying = [f for f in fields
               if len({json.dumps(i.get(f), sort_keys=True) for i in identities}) > 1]
    lines.append(f"identity fields that differ between rows: {', '.join(varying) or 'none'}")
    return lines


def check(path: Path, against: str | None = None,
          wait: float = 60.0) -> tuple[list[str], list[str]]:
    """Check the cache at ``path`` (see the module's docstring), waiting up to ``wait`` seconds
    for other processes' transactions; returns what it holds (lines to print) and the problems
    found (empty: every check passed)."""
    problems = []
    with contextlib.closing(sqlite3.connect(path, timeout=wait)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            problems.append("another process holds the file, so its write-ahead log could not be "
                            "folded into it; stop every process using it and check again")
        integrity = [line for (line,) in conn.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems.append("SQLite's integrity check: " + "; ".join(integrity[:5]))
        wrong = [h for h, identity in conn.execute("SELECT identity_hash, identity FROM results")
                 if identity_hash(json.loads(identity)) != h]
        if wrong:
            problems.append(f"{len(wrong)} rows are not stored under the hash of their own "
                            f"identity (the first: {wrong[0]})")
        held = summary(conn)
        if against is not None:
            before = rows_at_revision(path, against)
            if before is None:
                held.append(f"git has no {path.name} at {against}: every row is new")
            else:
                now = _hashes(conn)
                lost = before - now
                held.append(f"rows at {against}: {len(before)}; added since: {len(now - before)}")
                if lost:
                    problems.append(f"{len(lost)} of the {len(before)} rows it held at {against} "
                                    "are gone")
    rescued = sorted(path.parent.glob(f"{path.stem}.rescued-*{path.suffix}"))
    if rescued:
        problems.append(f"rows rescued from a replaced file wait beside it ({rescued[0].name}"
                        f"{' and more' if len(rescued) > 1 else ''}): add them with "
                        f"EvaluationCache('{path}').add_rows_from(RESCUED), then remove them")
    return held, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cache", type=Path, help="the cache file (.sqlite)")
    parser.add_argument("--against", metavar="REV", default=None,
                        help="a git revision (HEAD, a commit) whose rows of this file must all "
                             "still be there")
    parser.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for another process's transaction on the file "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.cache.is_file():
        parser.error(f"{args.cache}: no such file")
    try:
        held, problems = check(args.cache, args.against, args.wait)
    except sqlite3.DatabaseError as err:
        print(f"check_cache.py: {args.cache} is not a readable cache ({err})", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError:
        parser.error(f"--against {args.against}: {args.cache} is not in a git checkout")
    print("\n".join(held))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print("all checks passed" if not problems else f"{len(problems)} problems", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
