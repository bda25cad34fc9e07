"""The reward figures: a band that stays inside the batch's range, a title that says what ran."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from agents import plotting  # noqa: E402


def write_run(folder, iterations: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    mean = np.full(iterations, 90.0)
    pd.DataFrame({"iteration": np.arange(1, iterations + 1), "reward_mean": mean,
                  "reward_std": np.full(iterations, 60.0),  # r_param: one -100 in the batch
                  "reward_min": np.full(iterations, -100.0), "reward_max": mean + rng.random(iterations)}
                 ).to_csv(folder / "iterations.csv", index=False)


def test_the_band_never_leaves_the_batch_range_and_the_title_says_what_ran(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_run(runs / f"NASCell-small-v0__ppo_param__{seed}__123", 1000)
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to inspect it
    plotting.plot_runs(plotting.find_runs([str(runs)]), tmp_path / "r.png", aggregate=True)
    ax = figures[0].axes[0]
    (band,) = ax.collections
    top = max(path.vertices[:, 1].max() for path in band.get_paths())
    assert top <= 91.0  # the batch max, not mean + std = 150
    assert ax.get_title() == "NASCell-small-v0, ppo_param, 2 seeds (0, 1)"
    assert ax.get_xscale() == "log"  # 1,000 iterations
    labels = ax.get_legend_handles_labels()[1]
    assert "2 seeds mean" in labels and not any(label.startswith("0 ") for label in labels)
    assert (tmp_path / "r.png").is_file()
