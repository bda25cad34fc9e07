"""Where reward tables are: the shipped ones, the ones a user builds, and a shared loaded copy."""

from __future__ import annotations

import functools
import importlib.resources
import os
from pathlib import Path

from .reward_table import RewardTable


def user_table_dir() -> Path:
    """Where tables a user builds go: ``$XDG_DATA_HOME/nas_env/reward_tables``, else
    ``~/.local/share/nas_env/reward_tables`` (never inside the installed package)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "nas_env" / "reward_tables"


def table_path(dataset: str = "mnist", protocol: str = "fast", space: str = "small") -> Path:
    """The path of the table for ``space``, ``dataset`` and ``protocol``: the one shipped with
    the package, else one built into :func:`user_table_dir`.

    The shipped tables are found through ``importlib.resources``, so this works from an installed
    wheel as from a checkout.

    :raises FileNotFoundError: if there is no such table; the message lists those there are.
    """
    name = f"{space}_{dataset}_{protocol}.csv"
    folder = Path(str(importlib.resources.files("reward_tables")))
    for path in (folder / name, user_table_dir() / name):
        if path.is_file():
            return path
    shipped = sorted(p.name for p in folder.glob("*.csv"))
    raise FileNotFoundError(
        f"no reward table for space={space!r}, dataset={dataset!r}, protocol={protocol!r} "
        f"(looked for {folder / name} and {user_table_dir() / name}); shipped tables: "
        f"{', '.join(shipped) or 'none'}. Build one with experiments/build_reward_table.py "
        "(it writes into the second folder), or pass a table's path as table_path."
    )


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int, allow_partial: bool) -> RewardTable:
    return RewardTable(path, allow_partial)


def load_table(path: str | os.PathLike, allow_partial: bool = False) -> RewardTable:
    """A :class:`RewardTable` for ``path``, shared between callers while the file is unchanged.

    Every env made by ``gym.make`` or ``gym.make_vec`` would otherwise parse the CSV again. The
    table's arrays are read-only, so sharing it is safe.
    """
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"reward table {path} does not exist") from None
    return _load_cached(str(resolved), stat.st_mtime_ns, stat.st_size, bool(allow_partial))
