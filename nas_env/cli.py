"""Parsing of command-line values the scripts share."""

from __future__ import annotations


def parse_int_list(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``."""
    values: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        values.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    return values
