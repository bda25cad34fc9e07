"""experiments/bench_fidelity.py against an A_large reference set that is still being built."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from nas_env.child_net import network_size
from nas_env.spaces import LargeCell


def test_a_reference_set_of_fewer_than_16_cells_is_ranked(load_script, synthetic_data_root,
                                                         tmp_path, monkeypatch):
    """A reference table of a few cells, each with one or two seeds: the candidate's order is
    compared with the cells' seed means, over all of them (their best 16 are all of them)."""
    bench = load_script("bench_fidelity")
    rng = np.random.default_rng(3)
    nvec = LargeCell.action_nvec(5)
    cells = [LargeCell.from_action([int(rng.integers(n)) for n in nvec]) for _ in range(5)]
    rows = []
    for i, cell in enumerate(cells):
        for seed in ((0, 1) if i < 2 else (0,)):
            rows.append({"arch": cell.key, "seed": seed, "validation_accuracy": 80.0 + i + seed})
    reference = tmp_path / "large_fashion_mnist_fast.csv"
    pd.DataFrame(rows).to_csv(reference, index=False)
    out = tmp_path / "params.json"
    monkeypatch.setattr(sys, "argv", [
        "bench_fidelity.py", "--score", "params", "--dataset", "mnist",
        "--data-root", str(synthetic_data_root), "--large-reference", str(reference),
        "--threads", "1", "--out", str(out)])
    bench.main()
    figures = json.loads(out.read_text())["large_reference"]
    assert figures["cells"] == 5
    assert "kendall_top5" in figures
    means = pd.DataFrame(rows).groupby("arch", sort=True)["validation_accuracy"].mean()
    by_key = {cell.key: cell for cell in cells}
    params = [network_size(by_key[key])["trainable_parameters"] for key in means.index]
    assert figures["spearman"] == pytest.approx(spearmanr(params, means.to_numpy())[0])
    per_cell = json.loads(out.read_text())["large_reference_cells"]
    assert [c["arch"] for c in per_cell] == list(means.index)
    assert [c["reference"] for c in per_cell] == pytest.approx(means.to_numpy())
    assert sorted(c["seeds"] for c in per_cell) == [1, 1, 1, 2, 2]
    assert spearmanr([c["value"] for c in per_cell], params)[0] == pytest.approx(1.0)
