"""The table of every candidate reward in docs/fidelity/index.md, from bench_fidelity.py's JSON
files.

    python experiments/fidelity_table.py docs/data/fidelity
    python experiments/fidelity_table.py --noise docs/data/fidelity_noise

``--noise``: the table of the candidates' seed noise instead (runs of ``bench_fidelity.py
--train-seeds 0,1``): how far each candidate's two seeds agree, the Spearman of their mean, and
its noise-free estimate (:func:`nas_env.fidelity.noise_free_spearman`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nas_env.fidelity import spearman_text


def pair(small: dict, key: str) -> str:
    return " / ".join(f"{small[d][key]:.2f}" if d in small else "n/a"
                      for d in ("mnist", "fashion_mnist"))


def row(record: dict) -> list[str]:
    small, seconds = record["small"], record.get("seconds_per_large_cell") or {}
    fitted = [d for d, f in small.items() if f.get("fitted_here")]
    name = record["candidate"] + (f" (fitted on {fitted[0]})" if fitted and "fitted" not in
                                  record["candidate"] else "")
    return [f"{name} ({record.get('kind', 'training-free')})", spearman_text(small.get("mnist")), spearman_text(small.get("fashion_mnist")),
            pair(small, "kendall_top16"), pair(small, "top10pct_overlap"),
            spearman_text(record.get("large_reference")),
            f"{record['seconds_per_small_cell']:.2f}" if record.get("seconds_per_small_cell") else "n/a",
            " / ".join(f"{seconds[t]['median']:.2f}" for t in sorted(seconds, key=int)) or "n/a"]


NOISE_GROUPS = (("MNIST", lambda r: r["small"].get("mnist")),
                ("Fashion-MNIST", lambda r: r["small"].get("fashion_mnist")),
                ("A_large set", lambda r: r.get("large_reference")))


def noise_of(figures: dict | None) -> dict | None:
    """The ``noise`` figures of one group (None where the group or its noise is missing)."""
    return (figures or {}).get("noise")


def noise_cells(figures: dict | None) -> list[str]:
    """Own-seed agreement, Spearman of the seed means, noise-free Spearman [95% CI]."""
    noise = noise_of(figures)
    if not noise:
        return ["", "", ""]
    lo, hi = noise["noise_free_ci"]
    return [f"{noise['candidate_agreement']:.2f}", f"{noise['spearman']:.2f}",
            f"{noise['noise_free']:.2f} [{lo:.2f}, {hi:.2f}]"]


def noise_table(records: list[dict]) -> None:
    header = ["candidate"] + [f"{name}: {column}" for name, _ in NOISE_GROUPS
                              for column in ("own seeds agree", "seed mean", "noise-free [95% CI]")]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    reference = ["*`fast`'s own seeds*"]
    for _, get in NOISE_GROUPS:
        noise = next((noise_of(get(r)) for r in records if noise_of(get(r))), None)
        reference += [f"{noise['reference_agreement']:.2f}" if noise else "", "", ""]
    print("| " + " | ".join(reference) + " |")
    for record in records:
        cells = [c for _, get in NOISE_GROUPS for c in noise_cells(get(record))]
        if any(cells):
            print("| " + " | ".join([record["candidate"].split(" (")[0]] + cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the folder of bench_fidelity.py --out files")
    parser.add_argument("--noise", action="store_true",
                        help="the seed-noise table (runs with two training seeds) instead")
    args = parser.parse_args()
    if args.noise:
        noise_table([json.loads(p.read_text()) for p in sorted(args.folder.glob("*.json"))])
        return
    header = ["candidate (kind)", "Spearman, MNIST (64) [95% CI]", "Spearman, Fashion-MNIST (64) [95% CI]",
              "Kendall best 16 (M / F)", "best-10% overlap (M / F)", "Spearman, A_large reference",
              "s per A_small cell", "s per A_large cell, 1 / 2 threads"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    records = [json.loads(p.read_text()) for p in sorted(args.folder.glob("*.json"))]
    ceiling = next((r["fast_seed0_vs_seed1"] for r in records if r.get("fast_seed0_vs_seed1")), {})
    if ceiling:
        print("| " + " | ".join(["*reference: `fast` seed 0 against seed 1*",
                                 spearman_text(ceiling.get("mnist")), spearman_text(ceiling.get("fashion_mnist")),
                                 pair(ceiling, "kendall_top16"), pair(ceiling, "top10pct_overlap"),
                                 "", "", ""]) + " |")
    order = {"training-free": 0, "training": 1, "hybrid": 2}
    for record in sorted(records, key=lambda r: (order.get(r.get("kind"), 0), r["candidate"])):
        print("| " + " | ".join(row(record)) + " |")


if __name__ == "__main__":
    main()
