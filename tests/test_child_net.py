import pytest
import torch

from nas_env.child_net import ChildNet, count_flops, count_parameters, network_size
from nas_env.spaces import LargeCell, SmallCell


@pytest.mark.parametrize("cell", list(SmallCell.all()), ids=lambda c: c.paper_name())
def test_every_small_cell_builds_a_valid_child(cell):
    net = ChildNet(cell).eval()
    out = net(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
    assert torch.allclose(out.exp().sum(1), torch.ones(2), atol=1e-5)  # log-softmax


def test_paper_table2_cell_is_counted_exactly():
    # <3x3 conv, max>: conv 1->64 (576) + BN (128); conv 64->128 (73,728) + BN (256);
    # fc 6272->4096 (25,694,208) and 4096->10 (40,970).
    size = network_size(SmallCell("conv3x3", "max_pool2x2"))
    assert size["cell_parameters"] == 576 + 128 + 73_728 + 256
    assert size["trainable_parameters"] == 74_688 + 25_694_208 + 40_970
    # MACs: 28*28*64*9 + 14*14*128*64*9 + 6272*4096 + 4096*10
    assert size["flops"] == 451_584 + 14_450_688 + 25_690_112 + 40_960


def test_pool_and_identity_project_channels_with_1x1_conv():
    # identity in cell 1 needs 1->64 projection (64 + BN 128); cell 2 needs 64->128 (8192 + 256)
    size = network_size(SmallCell("identity", "identity"))
    assert size["cell_parameters"] == 64 + 128 + 8192 + 256


def test_large_cell_builds_and_counts():
    cell = LargeCell([(0, 0, "conv3x3", "identity"), (1, 0, "max_pool2x2", "sep_conv3x3")])
    net = ChildNet(cell)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(net.cells) < count_parameters(net)
    assert count_flops(net) > 0
    assert net.training  # counting FLOPs leaves the training mode alone
