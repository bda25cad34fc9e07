"""A drawing of an A_large cell, as the paper's Figure 7 draws its cells.

Each block is one row: its two inputs (the cell input ``h0`` or an earlier block's output), the
op applied to each, and the filter-wise concatenation that becomes the block's output ``h{b+1}``.
The outputs no later block consumes (orange) are concatenated and projected by a 1x1 conv into
the cell's output, as :mod:`nas_env.child_net` builds it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .spaces import LargeCell

OP_LABELS = {
    "conv1x3_3x1": "1x3 then 3x1 conv", "conv3x3": "3x3 conv", "sep_conv3x3": "3x3 dconv",
    "conv5x5": "5x5 conv", "conv7x7": "7x7 conv", "max_pool2x2": "2x2 max pool",
    "avg_pool2x2": "2x2 avg pool", "identity": "identity",
}


def draw_cell(cell: LargeCell, title: str | None = None):
    """A matplotlib figure of ``cell``'s blocks; see the module docstring."""
    n = cell.num_blocks
    fig, ax = plt.subplots(figsize=(9, 1.6 + 1.5 * n))
    box = dict(boxstyle="round,pad=0.35", linewidth=1.0)
    state_y = {0: n + 0.3}  # h0 at the top; block b's output below its row
    ax.text(4.5, state_y[0], "h0 (cell input)", ha="center", va="center",
            bbox={**box, "facecolor": "#dddddd"})
    unused = set(cell.unused_states)
    for b, block in enumerate(cell.blocks):
        y = n - b - 0.2
        for x, h, op in ((2.0, block.h_a, block.op1), (7.0, block.h_b, block.op2)):
            ax.annotate("", xy=(x, y + 0.18), xytext=(4.5 if h == 0 else 9.3, state_y[h]),
                        arrowprops=dict(arrowstyle="->", color="#555555", linewidth=0.9,
                                        connectionstyle="arc3,rad=0.0"))
            ax.text(x, y, f"{OP_LABELS[op]}\n(h{h})", ha="center", va="center", fontsize=9,
                    bbox={**box, "facecolor": "#cfe2f3"})
            ax.annotate("", xy=(4.5, y - 0.42), xytext=(x, y - 0.2),
                        arrowprops=dict(arrowstyle="->", color="#555555", linewidth=0.9))
        state_y[b + 1] = y - 0.55
        colour = "#f9cb9c" if (b + 1) in unused else "#d9ead3"
        ax.text(4.5, state_y[b + 1], f"concat -> h{b + 1}", ha="center", va="center",
                fontsize=9, bbox={**box, "facecolor": colour})
        ax.plot([5.4, 9.1], [state_y[b + 1]] * 2, linestyle=":", color="#999999", linewidth=0.8)
        ax.text(9.3, state_y[b + 1], f"h{b + 1}", ha="center", va="center", fontsize=9,
                color="#333333")
    for i in sorted(unused):
        ax.annotate("", xy=(8.0, -0.45), xytext=(9.3, state_y[i] - 0.12),
                    arrowprops=dict(arrowstyle="->", color="#e69138", linewidth=1.0))
    outputs = " + ".join(f"h{i}" for i in sorted(unused))
    ax.text(6.5, -0.6, f"cell output: concat({outputs}), 1x1 conv", ha="center", va="center",
            bbox={**box, "facecolor": "#f9cb9c"})
    ax.set_xlim(-0.5, 10.5)
    ax.set_ylim(-1.1, n + 0.8)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
