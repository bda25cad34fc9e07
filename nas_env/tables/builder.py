"""Build a reward table: train cells under one protocol and record one CSV row per (cell, seed).

The table is ``<out_dir>/<space>_<dataset>_<protocol>.csv`` with a JSON sidecar of the same stem
that records the whole protocol. The build is resumable: every finished row is written at once by
rewriting the file to a temporary name and renaming it over the old one (an atomic replace), so
killing the builder at any moment loses no finished row and leaves a file that loads; a rerun
skips the (cell, seed) pairs already in the file.

Several builders may fill one table at once (one per core with ``--threads 1``, or one per machine
on a shared filesystem): each reads the file again under a lock (``<table>.csv.lock``, via
``filelock``) before it starts a (cell, seed) and before it appends a finished row, so no builder
overwrites another's rows and none starts a pair that is already in the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import secrets
import sys
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
import torch
from filelock import FileLock
from tqdm.auto import tqdm

from ..cache import EvaluationCache
from ..data import DATASETS, SPLIT_SEED, VALIDATION_FRACTION, load_dataset
from ..run_checkpoint import CHECKPOINT_EVERY, RunInProgressError
from ..spaces import LargeCell, SmallCell
from ..training import Protocol, get_protocol, resolve_device, train_child
from .files import user_table_dir
from .schema import SCORE_COLUMN, TABLE_COLUMNS, RewardTableError, columns_of



def table_stem(space: str, dataset: str, protocol: str) -> str:
    return f"{space}_{dataset}_{protocol}"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a mix.

    The file gets the permissions of any new file (``0o666`` less the umask), not ``mkstemp``'s
    private ``0o600``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def default_out_dir() -> Path:
    """Where the builder writes tables unless told: :func:`~nas_env.tables.files.user_table_dir`,
    where :func:`~nas_env.tables.files.table_path` finds them."""
    return user_table_dir()


def protocol_record(dataset: str, protocol: str | Protocol, device: str, precision: str,
                    space: str = "small") -> dict:
    """Everything needed to reproduce a table's rows, for its JSON sidecar."""
    import torchvision

    return {
        "space": space,
        "dataset": dataset,
        "split_seed": SPLIT_SEED,
        "validation_fraction": VALIDATION_FRACTION,
        "protocol": get_protocol(protocol).as_dict(),
        "device": device,
        "precision": precision,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        },
    }


def _comparable(record: dict, path: Path) -> dict:
    """The parts of a sidecar that must match for rows to share a table (a protocol recorded
    before a field existed has that field's default, which is what it used)."""
    keys = ("space", "dataset", "split_seed", "validation_fraction", "precision", "protocol")
    missing = [k for k in keys if k not in record]
    if missing:
        raise RewardTableError(f"sidecar {path} lacks {', '.join(missing)}; it was not written by "
                               "this builder, so its rows cannot be extended")
    fields = {k: record[k] for k in keys[:-1]}
    return {**fields, "protocol": Protocol.from_dict(record["protocol"])}


def _read_sidecar(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RewardTableError(f"sidecar {path} is not readable JSON ({err})") from None
    if not isinstance(record, dict):
        raise RewardTableError(f"sidecar {path} is not a JSON object")
    return record


def _read_table(csv_path: Path) -> pd.DataFrame:
    return pd.read_csv(csv_path) if csv_path.exists() else pd.DataFrame(columns=list(TABLE_COLUMNS))


def _done_pairs(table: pd.DataFrame) -> set[tuple[str, int]]:
    return set(zip(table["arch"], table["seed"].astype(int)))


def build_reward_table(
    dataset: str = "mnist",
    protocol: str | Protocol = "fast",
    archs: Iterable[SmallCell | LargeCell] | None = None,
    seeds: Sequence[int] = (0,),
    out_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "auto",
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: float = CHECKPOINT_EVERY,
) -> Path:
    """Train every (cell, seed) not yet in the table and append its row. Returns the CSV path.

    Jobs run seed-major: every cell with the first seed, then every cell with the next, so a
    partial table covers the space once before it repeats it. Everything is checked before
    anything is written: the dataset's name, an existing sidecar's protocol, and (when there is
    something to train) the dataset's files. Prints where the table goes and how many pairs are
    to train; without a terminal (a log file) it prints one line per finished row instead of
    progress bars.

    :param archs: the cells to train (default: all 64 of A_small); A_large cells make an A_large
        table (``large_<dataset>_<protocol>.csv``, ``arch_index`` empty), one space per table.
    :param out_dir: the table's folder (default: :func:`default_out_dir`).
    :param checkpoint_dir, checkpoint_every: as for :func:`~nas_env.training.train_child`: an
        interrupted (cell, seed) resumes from its last save instead of starting again, and a
        (cell, seed) that another process is training into the same folder is skipped (that
        process writes its row).
    :raises ValueError: for an unknown dataset or a protocol that differs from the table's.
    :raises RewardTableError: for an existing sidecar that is not this builder's JSON.
    :raises nas_env.data.DatasetNotFoundError: if the dataset's files are not there.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset={dataset!r}; allowed: {', '.join(DATASETS)}")
    cells = list(SmallCell.all() if archs is None else archs)
    spaces = {"small" if isinstance(c, SmallCell) else "large" for c in cells}
    if len(spaces) != 1:
        raise ValueError("archs mixes A_small and A_large cells; a table holds one space")
    (space,) = spaces
    proto = get_protocol(protocol)
    dev = resolve_device(device)
    precision = proto.precision if precision == "auto" else precision
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    stem = table_stem(space, dataset, proto.name)
    csv_path, sidecar_path = out / f"{stem}.csv", out / f"{stem}.json"

    record = protocol_record(dataset, proto, dev.type, precision, space)
    if sidecar_path.exists():
        old = _read_sidecar(sidecar_path)
        if _comparable(old, sidecar_path) != _comparable(record, sidecar_path):
            raise ValueError(
                f"{sidecar_path} records a different protocol than this build "
                f"({_comparable(old, sidecar_path)} vs {_comparable(record, sidecar_path)}); "
                "choose another --out-dir or the protocol the table was built with."
            )
    done = _done_pairs(_read_table(csv_path))
    jobs = [(seed, cell) for seed in seeds for cell in cells if (cell.to_string(), seed) not in done]
    asked = len(cells) * len(seeds)
    print(f"table {csv_path}: {asked - len(jobs)} of the {asked} requested (cell, seed) pairs are "
          f"there, {len(jobs)} to train", flush=True)
    if not jobs:
        return csv_path

    data = load_dataset(dataset, data_root)  # before any write: a missing dataset writes nothing
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{csv_path}.lock")
    with lock:
        if not sidecar_path.exists():
            record["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            atomic_write_text(sidecar_path, json.dumps(record, indent=2) + "\n")
    bars = progress and sys.stderr.isatty()
    outer = tqdm(jobs, desc="cells", unit="cell", disable=not bars)
    inner = tqdm(total=0, desc="steps", unit="step", leave=False, disable=not bars)

    def on_step(step: int, total: int) -> None:
        if inner.total != total or step <= inner.n:  # a new run, or one resumed at ``step``
            inner.reset(total=total)
        inner.update(step - inner.n)

    for number, (seed, cell) in enumerate(outer, start=1):
        with lock:  # another builder on the same table may have done it meanwhile
            if (cell.to_string(), seed) in _done_pairs(_read_table(csv_path)):
                continue
        outer.set_postfix_str(f"{_name(cell)} seed {seed}")
        try:
            result = train_child(cell, data, proto, seed=seed, device=dev, precision=precision,
                                 on_step=on_step, checkpoint_dir=checkpoint_dir,
                                 checkpoint_every=checkpoint_every)
        except RunInProgressError:  # another builder is training this pair: it will write it
            if progress:
                print(f"{number}/{len(jobs)} {_name(cell)} seed {seed}: skipped, another "
                      "process is training it", flush=True)
            continue
        row = {
            "arch": cell.to_string(),
            "arch_index": cell.index if isinstance(cell, SmallCell) else None,
            **{k: result[k] for k in TABLE_COLUMNS if k in result and k != "val_curve"},
            "val_curve": json.dumps(result["val_curve"]),
        }
        row[proto.reward_key] = result[proto.reward_key]
        new = pd.DataFrame([row])[list(columns_of(proto.signal))]
        with lock:  # append to the file as it is now, keeping rows other builders wrote
            table = _read_table(csv_path)
            if (cell.to_string(), seed) not in _done_pairs(table):
                table = new if table.empty else pd.concat([table, new], ignore_index=True)
                atomic_write_text(csv_path, table.to_csv(index=False))
        if progress and not bars:
            print(f"{number}/{len(jobs)} {_name(cell)} seed {seed}: validation "
                  f"{result['validation_accuracy']:.2f}%, {result['training_time']:.0f} s", flush=True)
    inner.close()
    outer.close()
    return csv_path


def _name(cell: SmallCell | LargeCell) -> str:
    return cell.paper_name() if isinstance(cell, SmallCell) else cell.to_string()


def merge_table_rows(source: str | os.PathLike, into: str | os.PathLike) -> int:
    """Add to the table ``into`` the (cell, seed) rows of the table ``source`` it lacks, e.g.
    rows another machine built; both have a JSON sidecar beside them and the sidecars must
    record the same protocol. A row ``into`` already has is kept as it is. Written atomically
    under the table's lock, so it is safe beside builders that fill ``into``.

    :raises ValueError: if the sidecars record different protocols.
    :raises RewardTableError: if a sidecar is missing or is not this builder's JSON.
    :returns: the number of rows added.
    """
    source, into = Path(source), Path(into)
    records = {}
    for csv_path in (source, into):
        sidecar = csv_path.with_suffix(".json")
        if not sidecar.exists():
            raise RewardTableError(f"{csv_path} has no sidecar {sidecar}")
        records[csv_path] = _comparable(_read_sidecar(sidecar), sidecar)
    if records[source] != records[into]:
        raise ValueError(f"{source} and {into} record different protocols ({records[source]} vs "
                         f"{records[into]}); their rows cannot share a table")
    new = _read_table(source)[list(TABLE_COLUMNS)]
    with FileLock(f"{into}.lock"):
        table = _read_table(into)
        have = _done_pairs(table)
        fresh = new[[(a, int(s)) not in have for a, s in zip(new["arch"], new["seed"])]]
        if not fresh.empty:
            table = fresh if table.empty else pd.concat([table, fresh], ignore_index=True)
            atomic_write_text(into, table.to_csv(index=False))
    return len(fresh)


def export_cache_table(
    cache: EvaluationCache,
    dataset: str,
    protocol: str,
    out_dir: str | os.PathLike,
    space: str = "small",
) -> Path:
    """Write the cache's results for (``space``, ``dataset``, ``protocol``) as a reward table.

    The CSV has the shipped tables' columns (:data:`~nas_env.tables.schema.TABLE_COLUMNS`, one
    row per (cell, training seed); ``arch_index`` is empty for A_large; ``score`` after them for a
    protocol not read by its validation accuracy) and a JSON sidecar
    recording the protocol exactly as the cache stored it, plus where the rows came from. A
    complete A_small export is a table :class:`~nas_env.tables.reward_table.RewardTable` and the
    table envs serve. Written atomically: an existing table is replaced only once the new one is
    whole.

    :raises ValueError: if the cache holds no such rows, or rows of two protocols with this name.
    :returns: the CSV's path, ``<out_dir>/<space>_<dataset>_<protocol>.csv``.
    """
    rows = list(cache.rows(space=space, dataset=dataset, protocol=protocol))
    if not rows:
        raise ValueError(f"{cache.path} holds no {space} results on {dataset} with protocol "
                         f"{protocol!r}")
    conditions = {json.dumps([row["identity"]["protocol"], row["identity"]["data"],
                              row["identity"]["split_sizes"]], sort_keys=True) for row in rows}
    if len(conditions) > 1:
        raise ValueError(f"{cache.path} holds results named {protocol!r} of several different "
                         "protocols or datasets files; a table records one protocol on one "
                         "dataset")
    proto = Protocol.from_dict(rows[0]["identity"]["protocol"])
    results = [row["result"] for row in rows]
    table = pd.DataFrame([
        {**{k: r[k] for k in TABLE_COLUMNS if k != "val_curve"}, "val_curve": json.dumps(r["val_curve"]),
         SCORE_COLUMN: r.get(SCORE_COLUMN)}
        for r in results
    ])[list(columns_of(proto.signal))].sort_values(["seed", "arch"], kind="stable")
    precision = table["precision"].mode().iloc[0]
    record = protocol_record(dataset, proto, table["device"].mode().iloc[0], precision, space)
    record["source"] = f"exported from the evaluation cache {cache.path}"
    record["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out = Path(out_dir)
    csv_path = out / f"{table_stem(space, dataset, proto.name)}.csv"
    atomic_write_text(csv_path, table.to_csv(index=False))
    atomic_write_text(csv_path.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    return csv_path
