"""The cache serves a row only to a run of the same identity: same data files, split sizes,
precision, device and schema; a row missing a figure is completed, not served with a hole; and
equivalent cells train as one canonical cell, whichever is asked first."""

from __future__ import annotations

import math

import pytest

import nas_env.training
from nas_env.cache import EvaluationCache
from nas_env.evaluators import LiveEvaluator
from nas_env.spaces import LargeCell
from nas_env.training import Protocol

from conftest import write_mnist_files

TINY = Protocol("tiny", epochs=1, lr=1e-2, schedule="onecycle", batch_size=32,
                checkpoints_per_epoch=1, filters=(4, 8), fc_units=32, precision="fp32")
CELL = LargeCell([(0, 0, "conv3x3", "max_pool2x2")])
SWAPPED = LargeCell([(0, 0, "max_pool2x2", "conv3x3")])


def live(root, cache, **kwargs) -> LiveEvaluator:
    return LiveEvaluator("large", "mnist", kwargs.pop("protocol", TINY), data_root=root,
                         cache=cache, threads=1, **kwargs)


def count_trainings(monkeypatch) -> list:
    calls = []
    real = nas_env.training.train_child

    def counting(cell, *args, **kwargs):
        result = real(cell, *args, **kwargs)
        calls.append(cell.to_string())  # a finished training, not an attempt refused
        return result

    monkeypatch.setattr(nas_env.training, "train_child", counting)
    return calls


def test_a_row_trained_on_other_files_under_the_same_name_is_not_served(
        synthetic_data_root, tmp_path, monkeypatch):
    cache = tmp_path / "c.sqlite"
    live(synthetic_data_root, cache).evaluate(CELL)
    other_root = write_mnist_files(tmp_path / "other", "MNIST", seed=5)  # another "mnist"
    calls = count_trainings(monkeypatch)
    result = live(other_root, cache).evaluate(CELL)
    assert result["source"] == "training" and len(calls) == 1
    assert len(EvaluationCache(cache)) == 2
    # Each evaluator is served its own row from then on.
    assert live(synthetic_data_root, cache).evaluate(CELL)["source"] == "cache"
    assert live(other_root, cache).evaluate(CELL)["source"] == "cache"
    assert len(calls) == 1


def test_a_row_of_another_precision_is_not_served(synthetic_data_root, tmp_path, monkeypatch):
    cache = tmp_path / "c.sqlite"
    fp32 = live(synthetic_data_root, cache).evaluate(CELL)
    assert fp32["precision"] == "fp32"
    calls = count_trainings(monkeypatch)
    bf16 = live(synthetic_data_root, cache, precision="bf16").evaluate(CELL)
    assert bf16["source"] == "training" and bf16["precision"] == "bf16" and len(calls) == 1


def test_a_row_of_other_split_sizes_is_not_served(synthetic_data_root, tmp_path):
    cache = tmp_path / "c.sqlite"
    live(synthetic_data_root, cache).evaluate(CELL)
    fewer = Protocol(**{**TINY.as_dict(), "train_images": 100})
    assert live(synthetic_data_root, cache, protocol=fewer).evaluate(CELL)["source"] == "training"


def test_a_row_stored_without_latency_gets_it_measured_without_training(
        synthetic_data_root, tmp_path, monkeypatch):
    cache = tmp_path / "c.sqlite"
    first = live(synthetic_data_root, cache).evaluate(CELL)
    assert first["latency_ms"] is None
    calls = count_trainings(monkeypatch)
    served = live(synthetic_data_root, cache, measure_latency=True).evaluate(CELL)
    assert calls == [] and served["source"] == "cache"
    assert served["latency_ms"] > 0
    assert served["validation_accuracy"] == first["validation_accuracy"]
    # Measured once and stored: the next evaluator reads the same figure.
    again = live(synthetic_data_root, cache, measure_latency=True).evaluate(CELL)
    assert again["latency_ms"] == served["latency_ms"]


def test_equivalent_cells_train_as_one_canonical_cell(synthetic_data_root, tmp_path, monkeypatch):
    assert CELL.key == SWAPPED.key and CELL.to_string() != SWAPPED.to_string()
    calls = count_trainings(monkeypatch)
    one = live(synthetic_data_root, tmp_path / "a.sqlite").evaluate(CELL)
    other = live(synthetic_data_root, tmp_path / "b.sqlite").evaluate(SWAPPED)
    # Whichever was asked first, the same (canonical) network was trained: the same numbers.
    assert calls == [CELL.canonical().to_string()] * 2
    assert one["validation_accuracy"] == other["validation_accuracy"]
    assert one["loss_curve"] == other["loss_curve"]
    # Each is reported as the cell that was asked.
    assert (one["arch"], other["arch"]) == (CELL.to_string(), SWAPPED.to_string())


def test_a_training_run_records_its_summed_loss_and_loss_curve(synthetic_data_root, tmp_path):
    two_checkpoints = Protocol(**{**TINY.as_dict(), "epochs": 2})
    result = live(synthetic_data_root, tmp_path / "c.sqlite",
                  protocol=two_checkpoints).evaluate(CELL)
    steps_per_epoch = math.ceil(270 / 32)
    assert [e for e, _ in result["loss_curve"]] == [e for e, _ in result["val_curve"]] == [1.0, 2.0]
    mean_loss = sum(loss for _, loss in result["loss_curve"]) / 2
    assert result["train_loss_sum"] == pytest.approx(mean_loss * 2 * steps_per_epoch)
    cached = live(synthetic_data_root, tmp_path / "c.sqlite",
                  protocol=two_checkpoints).evaluate(CELL)
    assert cached["source"] == "cache"
    assert (cached["train_loss_sum"], cached["loss_curve"]) == (result["train_loss_sum"],
                                                                result["loss_curve"])


def _hold_run(path, seconds: float, before_release=None):
    """Another process training the run of checkpoint ``path`` (an flock is held per open file,
    so a second claim in this process stands for a second process)."""
    import threading
    import time

    from nas_env.run_checkpoint import claim_run

    started = threading.Event()

    def hold():
        with claim_run(path):
            started.set()
            time.sleep(seconds)
            if before_release is not None:
                before_release()

    thread = threading.Thread(target=hold)
    thread.start()
    started.wait()
    return thread


@pytest.mark.parametrize("holder_finishes", [True, False])
def test_a_run_another_search_is_training_is_waited_for_not_a_crash(
        synthetic_data_root, tmp_path, monkeypatch, holder_finishes):
    from nas_env.run_checkpoint import checkpoint_file

    cache, checkpoints = tmp_path / "c.sqlite", tmp_path / "checkpoints"
    other = live(synthetic_data_root, tmp_path / "other.sqlite")
    finished = other.evaluate(CELL)  # what the other search's run will store
    mine = live(synthetic_data_root, cache, checkpoint_dir=checkpoints)
    identity = mine.identity(CELL, 0)
    store = (lambda: EvaluationCache(cache).put(identity, finished)) if holder_finishes else None
    calls = count_trainings(monkeypatch)
    holder = _hold_run(checkpoint_file(checkpoints, identity), 3.0, store)
    try:
        result = mine.evaluate(CELL)
    finally:
        holder.join()
    if holder_finishes:  # its row is read, nothing trained twice
        assert result["source"] == "cache" and calls == []
    else:  # it stopped without a result: this search takes the run over
        assert result["source"] == "training" and calls == [CELL.canonical().to_string()]
    assert result["validation_accuracy"] == finished["validation_accuracy"]
