import math

import pytest
import torch

from nas_env.child_net import ChildNet, network_size
from nas_env.data import DataSplits
from nas_env.spaces import LargeCell, SmallCell
from nas_env.zero_cost import (
    NET_SCORES,
    SCORES,
    init_seed,
    jacob_cov,
    meco,
    naswot,
    score_cell,
    synflow,
    zico,
)
from nas_env.zero_cost.activations import naswot_from_probe as _naswot
from nas_env.zero_cost.probe import Probe as _Probe

SMALL = SmallCell("conv3x3", "max_pool2x2")
LARGE = LargeCell([(0, 0, "conv3x3", "identity"), (1, 0, "sep_conv3x3", "avg_pool2x2"),
                   (2, 1, "conv1x3_3x1", "max_pool2x2")])
TINY = {"filters": (4, 8), "fc_units": 16}  # a proxy narrow enough for fast tests


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Scores take a few milliseconds here; two threads on a busy machine make them seconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> DataSplits:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
    return DataSplits(x, y, x[:0], y[:0], x[:0], y[:0], dataset="synthetic", root="")


def tiny_net(cell, seed=0) -> ChildNet:
    torch.manual_seed(seed)
    return ChildNet(cell, **TINY)


@pytest.mark.parametrize("cell", [SMALL, LARGE], ids=["small", "large3"])
def test_every_score_is_finite(cell, data):
    scores = score_cell(cell, data, inits=1, batch_size=16)
    assert list(scores) == list(SCORES)
    assert all(math.isfinite(v) for v in scores.values()), scores


@pytest.mark.parametrize("blocks", [1, 5])
def test_large_cells_of_one_to_five_blocks_score(blocks, data):
    cell = LargeCell([(b, 0, "conv5x5", "identity") for b in range(blocks)])
    scores = score_cell(cell, data, inits=1, batch_size=16, **TINY)
    assert all(math.isfinite(v) for v in scores.values()), scores


def test_score_cell_is_the_mean_of_the_public_functions(data):
    # score_cell shares one pass per initialisation between five scores; it must give what each
    # function gives on its own (with splits=2, the shared pass's mini-batches).
    scores = score_cell(LARGE, data, scores=list(NET_SCORES), seed=3, inits=2, batch_size=16,
                        **TINY)
    x, y = data.train_x, data.train_y
    for name, fn in NET_SCORES.items():
        values = []
        for init in range(2):
            net = tiny_net(LARGE, init_seed(3, init))
            values.append(fn(net, x, y) if name in ("synflow", "meco") else fn(net, x, y, splits=2))
        assert scores[name] == pytest.approx(sum(values) / 2, rel=1e-9, abs=1e-9), name


def test_same_seed_same_floats_other_seed_other_floats(data):
    first = score_cell(SMALL, data, seed=0, inits=2, batch_size=16, **TINY)
    assert score_cell(SMALL, data, seed=0, inits=2, batch_size=16, **TINY) == first
    other = score_cell(SMALL, data, seed=1, inits=2, batch_size=16, **TINY)
    assert any(other[name] != first[name] for name in NET_SCORES)


def test_scores_leave_the_callers_net_rng_and_threads_alone(data):
    net = tiny_net(LARGE).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    for fn in NET_SCORES.values():
        fn(net, data.train_x, data.train_y)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert not net.training and all(p.grad is None for p in net.parameters())
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads


def test_unknown_score_names_the_allowed_ones(data):
    with pytest.raises(ValueError, match=r"'flops'.*allowed: synflow, snip, grad_norm"):
        score_cell(SMALL, data, scores=("synflow", "flops"))
    with pytest.raises(ValueError, match="at least 2"):
        zico(tiny_net(SMALL), data.train_x, data.train_y, splits=1)


def test_synflow_grows_with_the_weights_a_cell_adds(data):
    # Synaptic flow sums |theta * dR/dtheta| over every weight: a cell of two 7x7 convolutions
    # carries far more of it than one of two identities (1x1 projections only), for any seed.
    for seed in range(3):
        wide = synflow(tiny_net(SmallCell("conv7x7", "conv7x7"), seed), data.train_x)
        narrow = synflow(tiny_net(SmallCell("identity", "identity"), seed), data.train_x)
        assert wide > narrow + 1


def test_params_and_macs_are_the_paper_size_network(data):
    cell = SmallCell("conv5x5", "identity")
    scores = score_cell(cell, data, scores=("params", "macs"))
    size = network_size(cell)
    assert scores == {"params": size["trainable_parameters"], "macs": size["flops"]}


def test_naswot_kernel_counts_agreements():
    codes = torch.rand(6, 50, generator=torch.Generator().manual_seed(0)) > 0.5
    c = codes.double()
    kernel = c @ c.T + (1 - c) @ (1 - c).T  # the paper's formula
    probe = _Probe(weights=[], gradients=None, codes=codes, jacobian=None)
    assert _naswot(probe) == pytest.approx(torch.linalg.slogdet(kernel).logabsdet.item())


def test_naswot_and_jacob_cov_punish_a_batch_that_cannot_tell_images_apart(data):
    # Two images the network maps to the same codes make K singular; a batch of distinct images
    # does not. Jacobians that correlate perfectly give jacob_cov its lowest values.
    net = tiny_net(SMALL)
    x = data.train_x[:8]
    same = x[:1].expand(8, -1, -1, -1)
    assert naswot(net, same) == -math.inf < naswot(net, x)
    assert jacob_cov(net, same) < jacob_cov(net, x)


def test_meco_sums_the_smallest_eigenvalue_of_each_feature_maps_channel_correlation():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 3, 3)
    net = torch.nn.Sequential(conv)  # two modules whose output is a feature map: both count
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        channels = conv(x[:1])[0].double().reshape(3, -1)
    expected = 2 * float(torch.linalg.eigvalsh(torch.corrcoef(channels))[0])
    assert meco(net, x) == pytest.approx(expected, rel=1e-6)
    assert meco(net, x) == meco(net, x[:1])  # one image: the rest of the batch is unused


def test_meco_scores_a_copied_channel_at_zero():
    # A channel that repeats another makes the correlation matrix singular.
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 2, 3)
    with torch.no_grad():
        conv.weight[1] = conv.weight[0]
        conv.bias[1] = conv.bias[0]
    x = torch.randn(1, 1, 8, 8)
    assert meco(conv, x) == pytest.approx(0.0, abs=1e-9)
    distinct = torch.nn.Conv2d(1, 2, 3)
    assert meco(distinct, x) > 1e-3
