"""Draw an A_large cell from its string form, as the paper's Figure 7 draws its cells.

Each block is one row: its two inputs (the cell input ``h0`` or an earlier block's output), the
op applied to each, and the filter-wise concatenation that becomes the block's output ``h{b+1}``.
The outputs no later block consumes are concatenated (and projected by a 1x1 conv) into the
cell's output, as ``nas_env.child_net`` builds it.

    python experiments/draw_cell.py "|conv3x3~0|max_pool2x2~0|+|identity~1|sep_conv3x3~0|" \\
        --out docs/figures/cell.png --title "best cell"
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")

from nas_env.drawing import draw_cell  # noqa: E402
from nas_env.spaces import LargeCell  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arch", help="the cell's string form (info['arch'])")
    parser.add_argument("--out", required=True, help="image file to write (.png, .svg, .pdf)")
    parser.add_argument("--title", default=None)
    args = parser.parse_args()
    fig = draw_cell(LargeCell.from_string(args.arch), args.title)
    fig.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
