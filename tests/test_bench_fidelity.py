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


def test_two_training_seeds_give_each_side_s_agreement_and_the_noise_free_figure(
        load_script, synthetic_data_root, tmp_path, monkeypatch):
    """With --train-seeds 0,1 a training candidate's two seeds are compared with each other and
    the reference's two seeds with theirs, cell for cell in the reference table's order."""
    from nas_env.evaluators import LiveEvaluator
    from nas_env.protocols import Protocol

    bench = load_script("bench_fidelity")
    tiny = Protocol("tiny", epochs=1, lr=1e-2, schedule="onecycle", batch_size=32,
                    checkpoints_per_epoch=1, filters=(4, 8), fc_units=32, precision="fp32")
    ops = ("conv3x3", "max_pool2x2", "identity", "avg_pool2x2", "conv1x3_3x1")
    cells = [LargeCell([(0, 0, ops[i], ops[(i + 2) % 5])]) for i in range(5)]
    rows = [{"arch": cell.key, "seed": seed, "validation_accuracy": 80.0 + i * (1 + seed) % 4}
            for i, cell in enumerate(cells) for seed in (0, 1)]
    reference = tmp_path / "large_fashion_mnist_fast.csv"
    pd.DataFrame(rows).to_csv(reference, index=False)
    out, cache = tmp_path / "tiny.json", tmp_path / "cache.sqlite"
    monkeypatch.setattr(sys, "argv", [
        "bench_fidelity.py", "--protocol", json.dumps(tiny.as_dict()), "--train-seeds", "0,1",
        "--dataset", "fashion_mnist", "--data-root", str(synthetic_data_root),
        "--cache-path", str(cache), "--large-reference", str(reference), "--large", "1",
        "--threads", "1", "--out", str(out)])
    bench.main()
    figures = json.loads(out.read_text())["large_reference"]
    noise = figures["noise"]
    assert noise["cells"] == 5 and noise["candidate_seeds"] == noise["reference_seeds"] == 2
    assert noise["spearman"] == pytest.approx(figures["spearman"])
    by_seed = pd.DataFrame(rows).pivot(index="arch", columns="seed", values="validation_accuracy")
    assert noise["reference_agreement"] == pytest.approx(spearmanr(by_seed[0], by_seed[1])[0])
    evaluator = LiveEvaluator("large", "fashion_mnist", tiny, data_root=synthetic_data_root,
                              cache=str(cache), threads=1)
    keys = sorted(cell.key for cell in cells)
    by_key = {cell.key: cell for cell in cells}
    results = [[evaluator.evaluate_seed(by_key[k], s) for k in keys] for s in (0, 1)]
    assert {r["source"] for runs in results for r in runs} == {"cache"}  # both seeds were kept
    seeds = [[r["validation_accuracy"] for r in runs] for runs in results]
    assert noise["candidate_agreement"] == pytest.approx(spearmanr(seeds[0], seeds[1])[0])


def test_the_noise_table_shows_each_candidate_s_own_agreement_and_noise_free_figure(
        load_script, tmp_path, monkeypatch, capsys):
    table = load_script("fidelity_table")
    noise = {"cells": 64, "candidate_seeds": 2, "reference_seeds": 2, "candidate_agreement": 0.58,
             "reference_agreement": 0.96, "spearman": 0.67, "noise_free": 0.79,
             "noise_free_ci": [0.62, 0.95]}
    record = {"candidate": "cheap (validation accuracy, mean of seeds 0, 1)", "kind": "training",
              "small": {"fashion_mnist": {"spearman": 0.67, "noise": noise}},
              "large_reference": None}
    (tmp_path / "cheap.json").write_text(json.dumps(record))
    one_seed = {"candidate": "zico", "small": {"mnist": {"spearman": 0.7}}}
    (tmp_path / "zico.json").write_text(json.dumps(one_seed))
    monkeypatch.setattr(sys, "argv", ["fidelity_table.py", "--noise", str(tmp_path)])
    table.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| *`fast`'s own seeds* |  |  |  | 0.96 |  |  |  |  |  |"
    assert lines[3] == "| cheap |  |  |  | 0.58 | 0.67 | 0.79 [0.62, 0.95] |  |  |  |"
    assert len(lines) == 4  # a candidate with one seed has no row


def test_a_late_loss_protocol_is_ranked_by_its_late_loss_unless_told_otherwise(
        load_script, synthetic_data_root, tmp_path, monkeypatch):
    from nas_env.evaluators import LiveEvaluator
    from nas_env.protocols import Protocol

    bench = load_script("bench_fidelity")
    late = Protocol("tiny-late", epochs=1, lr=1e-2, schedule="onecycle", batch_size=32,
                    checkpoints_per_epoch=1, filters=(4, 8), fc_units=32, precision="fp32",
                    loss_points_per_epoch=2, signal="late_loss")
    ops = ("conv3x3", "max_pool2x2", "identity", "avg_pool2x2", "conv1x3_3x1")
    cells = [LargeCell([(0, 0, ops[i], ops[(i + 1) % 5])]) for i in range(4)]
    reference = tmp_path / "large_fashion_mnist_fast.csv"
    pd.DataFrame([{"arch": c.key, "seed": 0, "validation_accuracy": 80.0 + i}
                  for i, c in enumerate(cells)]).to_csv(reference, index=False)
    cache = tmp_path / "cache.sqlite"
    evaluator = LiveEvaluator("large", "fashion_mnist", late, data_root=synthetic_data_root,
                              cache=str(cache), threads=1)
    by_key = {c.key: evaluator.evaluate(c) for c in cells}
    for signal, name, value in ((None, "late loss", lambda r: -r["loss_curve"][-1][1]),
                                ("val", "validation accuracy", lambda r: r["validation_accuracy"])):
        out = tmp_path / f"{signal}.json"
        argv = ["bench_fidelity.py", "--protocol", json.dumps(late.as_dict()),
                "--dataset", "fashion_mnist", "--data-root", str(synthetic_data_root),
                "--cache-path", str(cache), "--large-reference", str(reference),
                "--threads", "1", "--out", str(out)]
        monkeypatch.setattr(sys, "argv", argv + (["--signal", signal] if signal else []))
        bench.main()
        record = json.loads(out.read_text())
        assert record["candidate"] == f"tiny-late ({name})"
        assert [c["value"] for c in record["large_reference_cells"]] == pytest.approx(
            [value(by_key[c["arch"]]) for c in record["large_reference_cells"]])
