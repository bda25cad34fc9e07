"""The two search spaces of Arora & Krone: A_small and A_large.

Operations
----------
``OPS`` lists the paper's eight operations in a fixed order; an op's index in ``OPS`` is the
integer the env's action uses for it.

A_small
-------
A :class:`SmallCell` is two ops applied in sequence, ``op2(op1(x))``. ``SmallCell.all()`` yields
the 64 cells in index order (``index = 8 * op1 + op2``).

A_large
-------
A :class:`LargeCell` is ``B`` blocks (default 5). Block ``b`` (0-based) picks two inputs
``h_a, h_b`` from the hidden states ``0..b`` (0 is the cell's input, ``i >= 1`` the output of
block ``i - 1``) and two ops; its output is ``concat(op1(h_a), op2(h_b))`` along the channels.
The cell's output is, as in NASNet, the concatenation of every block output that no later block
consumes, projected by a 1x1 convolution to the cell's filter count.

String form
-----------
Both spaces print in NATS-Bench's node notation, one ``|op~input|`` group per node::

    SmallCell("conv3x3", "max_pool2x2")        ->  |conv3x3~0|+|max_pool2x2~1|
    LargeCell([(0, 0, "conv3x3", "identity")]) ->  |conv3x3~0|identity~0|

``SmallCell.from_string`` / ``LargeCell.from_string`` parse it back exactly.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

OPS: tuple[str, ...] = (
    "conv1x3_3x1",
    "conv3x3",
    "sep_conv3x3",
    "conv5x5",
    "conv7x7",
    "max_pool2x2",
    "avg_pool2x2",
    "identity",
)
"""The paper's eight operations, in the order of the action's integers."""

PAPER_OP_NAMES: dict[str, str] = {
    "conv1x3_3x1": "1x3 3x1 conv",
    "conv3x3": "3x3 conv",
    "sep_conv3x3": "3x3 dconv",
    "conv5x5": "5x5 conv",
    "conv7x7": "7x7 conv",
    "max_pool2x2": "max",
    "avg_pool2x2": "avg",
    "identity": "identity",
}
"""How the paper's tables write each op, for side-by-side reports."""

NUM_OPS = len(OPS)


class InvalidArchitectureError(ValueError):
    """An architecture, op name, string form or action outside its search space."""


def op_index(op: str | int) -> int:
    """Return the index of ``op`` (a name from ``OPS`` or an index), validating it."""
    if isinstance(op, bool):
        raise InvalidArchitectureError(f"op {op!r} is not an op name or index")
    if isinstance(op, str):
        try:
            return OPS.index(op)
        except ValueError:
            raise InvalidArchitectureError(
                f"unknown op {op!r}; allowed: {', '.join(OPS)}"
            ) from None
    try:
        index = int(op)
    except (TypeError, ValueError):
        raise InvalidArchitectureError(f"op {op!r} is not an op name or index") from None
    if index != op or not 0 <= index < NUM_OPS:
        raise InvalidArchitectureError(
            f"op index {op!r} is out of range; allowed: integers 0 to {NUM_OPS - 1}"
        )
    return index


def _parse_nodes(text: str) -> list[list[tuple[str, int]]]:
    """Split ``|a~0|b~1|+|c~2|`` into ``[[("a", 0), ("b", 1)], [("c", 2)]]``."""
    nodes = []
    for group in text.strip().split("+"):
        if not (group.startswith("|") and group.endswith("|") and len(group) > 2):
            raise InvalidArchitectureError(
                f"malformed architecture string {text!r}: each node must look like |op~input|"
            )
        entries = []
        for entry in group[1:-1].split("|"):
            op, sep, source = entry.partition("~")
            if not sep or not source.isdigit():
                raise InvalidArchitectureError(
                    f"malformed entry {entry!r} in {text!r}: expected op~input, e.g. conv3x3~0"
                )
            entries.append((op, int(source)))
        nodes.append(entries)
    return nodes


@dataclass(frozen=True)
class SmallCell:
    """A cell of A_small: ``op2(op1(x))``.

    :param op1: first op, a name from :data:`OPS` or its index.
    :param op2: second op, likewise.
    :raises InvalidArchitectureError: if either op is outside the space.
    """

    op1: str
    op2: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "op1", OPS[op_index(self.op1)])
        object.__setattr__(self, "op2", OPS[op_index(self.op2)])

    @staticmethod
    def action_nvec() -> tuple[int, ...]:
        """Number of choices per action integer: ``(8, 8)``."""
        return (NUM_OPS, NUM_OPS)

    @property
    def ops(self) -> tuple[str, str]:
        return (self.op1, self.op2)

    @property
    def index(self) -> int:
        """Stable position in ``SmallCell.all()``: ``8 * op1 + op2``."""
        return OPS.index(self.op1) * NUM_OPS + OPS.index(self.op2)

    @classmethod
    def from_index(cls, index: int) -> "SmallCell":
        if isinstance(index, np.integer):
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < NUM_OPS**2:
            raise InvalidArchitectureError(
                f"A_small index {index!r} is out of range; allowed: integers 0 to {NUM_OPS**2 - 1}"
            )
        return cls(OPS[index // NUM_OPS], OPS[index % NUM_OPS])

    @classmethod
    def all(cls) -> Iterator["SmallCell"]:
        """All 64 cells, in index order."""
        for index in range(NUM_OPS**2):
            yield cls.from_index(index)

    def to_action(self) -> list[int]:
        """The env's action: ``[op1, op2]`` as op indices."""
        return [OPS.index(self.op1), OPS.index(self.op2)]

    @classmethod
    def from_action(cls, action: Sequence[int]) -> "SmallCell":
        values = list(action)
        if len(values) != 2:
            raise InvalidArchitectureError(
                f"A_small action {values!r} must have 2 integers, each 0 to {NUM_OPS - 1}"
            )
        return cls(op_index(values[0]), op_index(values[1]))

    def to_string(self) -> str:
        return f"|{self.op1}~0|+|{self.op2}~1|"

    @classmethod
    def from_string(cls, text: str) -> "SmallCell":
        nodes = _parse_nodes(text)
        shape_ok = len(nodes) == 2 and all(len(node) == 1 for node in nodes)
        if not shape_ok or nodes[0][0][1] != 0 or nodes[1][0][1] != 1:
            raise InvalidArchitectureError(
                f"{text!r} is not an A_small cell; expected |op1~0|+|op2~1|"
            )
        return cls(nodes[0][0][0], nodes[1][0][0])

    @property
    def key(self) -> str:
        """Canonical key; ops in sequence do not commute, so it is the string form."""
        return self.to_string()

    def canonical(self) -> "SmallCell":
        """The cell itself: every A_small cell is its own canonical form."""
        return self

    def paper_name(self) -> str:
        """The paper's notation, e.g. ``<3x3 conv, max>``."""
        return f"<{PAPER_OP_NAMES[self.op1]}, {PAPER_OP_NAMES[self.op2]}>"

    def __str__(self) -> str:
        return self.to_string()


@dataclass(frozen=True)
class Block:
    """One block of an A_large cell: ``concat(op1(h_a), op2(h_b))``."""

    h_a: int
    h_b: int
    op1: str
    op2: str


@dataclass(frozen=True, init=False)
class LargeCell:
    """A cell of A_large: ``B`` blocks of ``(h_a, h_b, op1, op2)``.

    :param blocks: sequence of ``(h_a, h_b, op1, op2)``; in block ``b`` (0-based) the inputs are
        integers ``0..b`` (0 is the cell input, ``i`` the output of block ``i - 1``) and the ops
        are names from :data:`OPS` or their indices.
    :raises InvalidArchitectureError: if a block's inputs or ops are outside the space.
    """

    blocks: tuple[Block, ...]

    def __init__(self, blocks: Sequence[Sequence]) -> None:
        checked = []
        if len(blocks) == 0:
            raise InvalidArchitectureError("an A_large cell needs at least 1 block, got 0")
        for b, block in enumerate(blocks):
            if len(block) != 4:
                raise InvalidArchitectureError(
                    f"block {b} is {tuple(block)!r}; expected (h_a, h_b, op1, op2)"
                )
            h_a, h_b, op1, op2 = block
            for name, h in (("h_a", h_a), ("h_b", h_b)):
                if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h <= b:
                    raise InvalidArchitectureError(
                        f"block {b}: {name}={h!r} is out of range; allowed: integers 0 to {b}"
                    )
            checked.append(Block(h_a, h_b, OPS[op_index(op1)], OPS[op_index(op2)]))
        object.__setattr__(self, "blocks", tuple(checked))

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @staticmethod
    def action_nvec(num_blocks: int = 5) -> tuple[int, ...]:
        """Choices per action integer: ``(b + 1, b + 1, 8, 8)`` for each block ``b``."""
        if num_blocks < 1:
            raise InvalidArchitectureError(f"num_blocks={num_blocks!r}; allowed: integers >= 1")
        return tuple(n for b in range(num_blocks) for n in (b + 1, b + 1, NUM_OPS, NUM_OPS))

    @staticmethod
    def count(num_blocks: int = 5, distinct: bool = True) -> int:
        """How many cells ``num_blocks`` blocks make: action sequences (``distinct=False``), or
        distinct cells by :attr:`key` (a block's two (op, input) pairs unordered)."""
        nvec = LargeCell.action_nvec(num_blocks)
        if not distinct:
            return math.prod(nvec)
        pairs = [(b + 1) * NUM_OPS for b in range(num_blocks)]  # (op, input) choices per slot
        return math.prod(n * (n + 1) // 2 for n in pairs)

    def to_action(self) -> list[int]:
        return [
            v
            for blk in self.blocks
            for v in (blk.h_a, blk.h_b, OPS.index(blk.op1), OPS.index(blk.op2))
        ]

    @classmethod
    def from_action(cls, action: Sequence[int], num_blocks: int | None = None) -> "LargeCell":
        values = [int(v) for v in action]
        if len(values) % 4 or (num_blocks is not None and len(values) != 4 * num_blocks):
            expected = "a multiple of 4" if num_blocks is None else str(4 * num_blocks)
            raise InvalidArchitectureError(
                f"A_large action has {len(values)} integers; expected {expected} "
                "(h_a, h_b, op1, op2 per block)"
            )
        return cls([values[i : i + 4] for i in range(0, len(values), 4)])

    def to_string(self) -> str:
        return "+".join(
            f"|{blk.op1}~{blk.h_a}|{blk.op2}~{blk.h_b}|" for blk in self.blocks
        )

    @classmethod
    def from_string(cls, text: str) -> "LargeCell":
        nodes = _parse_nodes(text)
        if any(len(node) != 2 for node in nodes):
            raise InvalidArchitectureError(
                f"{text!r} is not an A_large cell; each block must be |op1~h_a|op2~h_b|"
            )
        return cls([(a[1], b[1], a[0], b[0]) for a, b in nodes])

    @property
    def unused_states(self) -> list[int]:
        """Block outputs (as hidden-state indices ``1..B``) that no later block consumes."""
        used = {h for blk in self.blocks for h in (blk.h_a, blk.h_b)}
        return [i for i in range(1, self.num_blocks + 1) if i not in used]

    @property
    def key(self) -> str:
        """Canonical key: the two (op, input) pairs of a block commute (concat order only
        permutes channels), so each block's pairs are sorted."""
        parts = []
        for blk in self.blocks:
            pairs = sorted([(blk.op1, blk.h_a), (blk.op2, blk.h_b)])
            parts.append("|" + "|".join(f"{op}~{h}" for op, h in pairs) + "|")
        return "+".join(parts)

    def canonical(self) -> "LargeCell":
        """The equivalent cell whose string form is :attr:`key` (each block's pairs sorted):
        every cell with this key trains as this one, so their results agree."""
        return LargeCell.from_string(self.key)

    def __str__(self) -> str:
        return self.to_string()


def parse_architecture(text: str) -> SmallCell | LargeCell:
    """Parse a string form of either space (A_small's shape is tried first)."""
    try:
        return SmallCell.from_string(text)
    except InvalidArchitectureError:
        return LargeCell.from_string(text)
