"""Checks of the keyword values the envs, tables and evaluators take, worded alike everywhere."""

from __future__ import annotations

from typing import Any, Sequence

SEED_MODES = ("mean", "sample")
"""How a result stands for a cell's training seeds: the ``"mean"`` over them, or one seed's
result, drawn uniformly (``"sample"``)."""


def not_allowed(name: str, value: Any, allowed: Sequence[str]) -> ValueError:
    """The error for ``name=value`` outside ``allowed``; it lists the allowed values."""
    return ValueError(f"{name}={value!r} is not allowed; choose one of: "
                      + ", ".join(repr(a) for a in allowed))


def check_seed_mode(seed_mode: str) -> str:
    """``seed_mode`` if it is one of :data:`SEED_MODES`, else a :func:`not_allowed` error."""
    if seed_mode not in SEED_MODES:
        raise not_allowed("seed_mode", seed_mode, SEED_MODES)
    return seed_mode
