"""Which candidate reward becomes ``NASCell-large-v0``'s default: the rule of
docs/fidelity/large-reference.md ("Choosing the large space's default") applied to the A_large
reference set.

    LARGE_REFERENCE=reward_tables/large_fashion_mnist_fast.csv \\
        bash experiments/fidelity_candidates.sh large
    python experiments/large_default.py docs/data/fidelity_large/large_fashion_mnist_fast

The folder holds one ``bench_fidelity.py --large-reference ... --out`` file per candidate, each
with its value for every cell of the set. The rule, fixed before the set was built past its first
eight rows:

- **Candidates**: those a search can use as its reward, that is every file except the rank
  models (not protocols) and the summed training loss (a reading of the runs, not a reward).
- **Choice half**: the odd-numbered random cells of the cell list (#1, #3, ..., #39). The winner
  is the candidate with the highest Spearman there, against the set's per-cell mean over the
  seeds it has.
- **Held out**: the even-numbered random cells, and experiment 3's cells (chosen as the best and
  worst by experiment 3's `cheap` search reward, so `cheap` is favoured there), reported beside.
- **Decided** once the set has every random cell (seed 0 covers them); before that the figures
  are printed and nothing is decided.
- The winner replaces ``cheap`` only if it beats ``cheap`` on the choice half by at least
  :data:`MARGIN`; otherwise ``cheap`` stays the default.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from nas_env.fidelity import rank_fidelity, spearman_text
from nas_env.spaces import parse_architecture

MARGIN = 0.10
"""How much higher than ``cheap``'s Spearman on the choice half the winner's must be to replace it."""

INCUMBENT = "cheap (validation accuracy)"
GROUPS = ("choice half", "held-out half", "experiment 3", "all")
_RANDOM = re.compile(r"^random draw .*#(\d+)$")


def group_of(origin: str) -> str:
    """The rule's group of a cell, from its ``origin`` in the cell list."""
    match = _RANDOM.match(origin)
    if match:
        return "choice half" if int(match.group(1)) % 2 else "held-out half"
    if origin.startswith("experiment 3"):
        return "experiment 3"
    raise ValueError(f"origin {origin!r}: expected 'random draw ... #N' or 'experiment 3 ...'")


def is_candidate(record: dict) -> bool:
    """Whether a bench_fidelity.py record can be a search's reward under the rule."""
    return record.get("model") is None and "(-TSE)" not in record["candidate"]


def figures(record: dict, origins: dict[str, str]) -> dict[str, dict | None]:
    """The record's rank figures over each group of cells (``None`` where fewer than 3 cells)."""
    cells = pd.DataFrame(record["large_reference_cells"])
    unknown = sorted(set(cells["arch"]) - set(origins))
    if unknown:
        raise ValueError(f"{len(unknown)} cells of {record['candidate']!r} are not in the cell "
                         f"list, e.g. {unknown[0]}")
    cells["group"] = [group_of(origins[a]) for a in cells["arch"]]
    out = {}
    for group in GROUPS:
        part = cells if group == "all" else cells[cells["group"] == group]
        out[group] = (rank_fidelity(part["value"].to_numpy(), part["reference"].to_numpy(),
                                    top=min(16, len(part))) if len(part) >= 3 else None)
    return out


def decide(table: dict[str, dict], random_cells: int, random_listed: int) -> str:
    """The rule's verdict over ``table`` (candidate name: its figures by group)."""
    if random_cells < random_listed:
        return (f"not decided: the set has {random_cells} of its {random_listed} random cells; "
                f"the rule decides once it has all of them")
    choice = {name: f["choice half"]["spearman"] for name, f in table.items()}
    winner = max(choice, key=choice.get)
    if INCUMBENT not in choice:
        raise ValueError(f"no {INCUMBENT!r} record to compare the winner with")
    if winner == INCUMBENT:
        return f"default: `cheap` stays (it ranks the choice half best, at {choice[winner]:.2f})"
    gain = choice[winner] - choice[INCUMBENT]
    if gain >= MARGIN:
        return (f"default: {winner} replaces `cheap` ({choice[winner]:.2f} against "
                f"{choice[INCUMBENT]:.2f} on the choice half, {gain:+.2f} >= {MARGIN})")
    return (f"default: `cheap` stays; the best on the choice half, {winner} "
            f"({choice[winner]:.2f}), beats it by {gain:+.2f}, less than {MARGIN}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path,
                        help="bench_fidelity.py --large-reference --out files, one per candidate")
    parser.add_argument("--cells", type=Path, default=Path("reward_tables/large_reference_cells.csv"),
                        help="the cell list with each cell's origin (default: %(default)s)")
    args = parser.parse_args()
    listed = pd.read_csv(args.cells)
    # bench_fidelity.py names a cell by its canonical key; the list keeps the cell as drawn.
    origins = {parse_architecture(a).key: o for a, o in zip(listed["arch"], listed["origin"])}
    random_listed = sum(bool(_RANDOM.match(o)) for o in listed["origin"])
    records = [json.loads(p.read_text()) for p in sorted(args.folder.glob("*.json"))]
    records = [r for r in records if r.get("large_reference_cells") and is_candidate(r)]
    if not records:
        parser.error(f"{args.folder}: no bench_fidelity.py file with per-cell A_large values "
                     "(rerun experiments/fidelity_candidates.sh large)")
    # Files written while the set grew may cover different cells: rank every candidate on the
    # cells all of them have, so that their figures compare.
    common = set.intersection(*({c["arch"] for c in r["large_reference_cells"]} for r in records))
    for r in records:
        r["large_reference_cells"] = [c for c in r["large_reference_cells"] if c["arch"] in common]
    table = {r["candidate"]: figures(r, origins) for r in records}
    random_cells = sum(bool(_RANDOM.match(origins[c["arch"]]))
                       for c in records[0]["large_reference_cells"])
    print("Spearman against the set's per-cell mean [95% bootstrap interval] (cells)\n")
    print("| candidate | " + " | ".join(GROUPS) + " |")
    print("|---|" + "---:|" * len(GROUPS))
    order = sorted(table, key=lambda n: -(table[n]["choice half"] or {"spearman": -2})["spearman"])
    for name in order:
        print(f"| {name} | " + " | ".join(spearman_text(table[name][g], cells=True) for g in GROUPS) + " |")
    print()
    print(decide(table, random_cells, random_listed))


if __name__ == "__main__":
    main()
