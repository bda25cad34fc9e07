"""Where nas_env keeps files by default: the per-user cache and the dataset root (no torch here)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "NAS_ENV_DATA"
"""The environment variable that names the dataset root."""


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nas_env``, else ``~/.cache/nas_env``: where downloads and the evaluation
    cache go by default."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nas_env"


def default_data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data root: ``root``, else ``$NAS_ENV_DATA``, else the per-user cache."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return user_cache_dir() / "datasets"
