import pytest

from nas_env.spaces import (
    NUM_OPS, OPS, InvalidArchitectureError, LargeCell, SmallCell, parse_architecture,
)


def test_small_space_enumerates_64_distinct_cells_in_index_order():
    cells = list(SmallCell.all())
    assert len(cells) == 64
    assert len({c.to_string() for c in cells}) == 64
    assert [c.index for c in cells] == list(range(64))
    assert cells[0] == SmallCell("conv1x3_3x1", "conv1x3_3x1")
    assert cells[63] == SmallCell("identity", "identity")


@pytest.mark.parametrize("cell", list(SmallCell.all()))
def test_small_cell_round_trips_through_string_action_and_index(cell):
    assert SmallCell.from_string(cell.to_string()) == cell
    assert SmallCell.from_action(cell.to_action()) == cell
    assert SmallCell.from_index(cell.index) == cell
    assert parse_architecture(str(cell)) == cell


def test_small_cell_string_and_paper_name():
    cell = SmallCell("conv3x3", "max_pool2x2")
    assert cell.to_string() == "|conv3x3~0|+|max_pool2x2~1|"
    assert cell.paper_name() == "<3x3 conv, max>"
    assert cell.to_action() == [1, 5]
    assert SmallCell(1, 5) == cell


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: SmallCell("conv9x9", "identity"), "conv9x9"),
        (lambda: SmallCell(8, 0), "0 to 7"),
        (lambda: SmallCell(-1, 0), "0 to 7"),
        (lambda: SmallCell.from_index(64), "0 to 63"),
        (lambda: SmallCell.from_action([1, 2, 3]), "2 integers"),
        (lambda: SmallCell.from_string("conv3x3,max"), "|op~input|"),
    ],
)
def test_small_cell_errors_quote_the_bad_value_and_allowed_range(make, fragment):
    with pytest.raises(InvalidArchitectureError, match=None) as info:
        make()
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_large_cell_round_trips_and_validates_inputs():
    cell = LargeCell([(0, 0, "conv3x3", "identity"), (1, 0, "max_pool2x2", "conv5x5")])
    assert cell.to_string() == "|conv3x3~0|identity~0|+|max_pool2x2~1|conv5x5~0|"
    assert LargeCell.from_string(cell.to_string()) == cell
    assert LargeCell.from_action(cell.to_action(), num_blocks=2) == cell
    assert cell.unused_states == [2]
    with pytest.raises(InvalidArchitectureError, match="h_b=2 is out of range; allowed: integers 0 to 1"):
        LargeCell([(0, 0, 0, 0), (0, 2, 0, 0)])
    with pytest.raises(InvalidArchitectureError, match="expected 8"):
        LargeCell.from_action([0, 0, 1, 1], num_blocks=2)


def test_large_action_nvec_matches_block_inputs():
    assert LargeCell.action_nvec(3) == (1, 1, 8, 8, 2, 2, 8, 8, 3, 3, 8, 8)
    assert len(OPS) == NUM_OPS == 8


def test_large_cell_key_ignores_order_within_a_block():
    a = LargeCell([(0, 0, "conv3x3", "identity"), (1, 0, "avg_pool2x2", "conv5x5")])
    b = LargeCell([(0, 0, "identity", "conv3x3"), (0, 1, "conv5x5", "avg_pool2x2")])
    assert a != b
    assert a.key == b.key
    c = LargeCell([(0, 0, "identity", "conv3x3"), (0, 1, "conv5x5", "max_pool2x2")])
    assert c.key != a.key


def test_a_numpy_integer_names_a_cell_like_an_int():
    import numpy as np

    assert SmallCell.from_index(np.int64(3)) == SmallCell.from_index(3)


def test_large_cell_counts_match_an_enumeration_of_small_spaces():
    import itertools

    for blocks in (1, 2):
        actions = list(itertools.product(*[range(n) for n in LargeCell.action_nvec(blocks)]))
        keys = {LargeCell.from_action(a).key for a in actions}
        assert LargeCell.count(blocks, distinct=False) == len(actions)
        assert LargeCell.count(blocks) == len(keys)
    assert (LargeCell.count(1), LargeCell.count(2)) == (36, 4896)
    assert LargeCell.count(5, distinct=False) == 15_461_882_265_600
    assert LargeCell.count(5) == 635_931_648_000
