import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import nas_env.tables.builder as builder
from nas_env.run_checkpoint import RunInProgressError
from nas_env.spaces import SmallCell
from nas_env.tables.builder import TABLE_COLUMNS, build_reward_table, merge_table_rows

CELLS = [SmallCell("conv3x3", "max_pool2x2"), SmallCell("identity", "identity")]


def fake_train_child(calls, fail_on=None, busy=None):
    """A stand-in for train_child that records its calls and can fail on one cell, or find
    another process training one."""

    def train(cell, data, protocol, seed, device, precision, on_step=None, checkpoint_dir=None,
              checkpoint_every=None):
        train.checkpoint_dirs.append(checkpoint_dir)
        if cell == fail_on:
            raise KeyboardInterrupt  # what a Ctrl-C during training looks like
        if cell == busy:
            raise RunInProgressError("another process is training it")
        calls.append((cell.to_string(), seed))
        return {"validation_accuracy": 90.0 + cell.index / 100, "test_accuracy": 89.0,
                "val_curve": [[1.0, 90.0]], "training_time": 1.5, "trainable_parameters": 10,
                "cell_parameters": 5, "flops": 20, "latency_ms": 0.5, "diverged": False,
                "seed": seed, "device": "cpu", "precision": precision}

    train.checkpoint_dirs = []
    return train


def test_builder_writes_table_and_sidecar_then_resumes(tmp_path, synthetic_data_root, monkeypatch):
    calls = []
    monkeypatch.setattr(builder, "train_child", fake_train_child(calls))
    path = build_reward_table("mnist", "fast", CELLS, seeds=[0, 1], out_dir=tmp_path,
                              data_root=synthetic_data_root, device="cpu", progress=False)
    assert path == tmp_path / "small_mnist_fast.csv"
    table = pd.read_csv(path)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert list(zip(table["arch"], table["seed"])) == [
        (CELLS[0].to_string(), 0), (CELLS[1].to_string(), 0),
        (CELLS[0].to_string(), 1), (CELLS[1].to_string(), 1),
    ]  # seed-major: the space is covered once before it is repeated
    sidecar = json.loads((tmp_path / "small_mnist_fast.json").read_text())
    assert sidecar["dataset"] == "mnist" and sidecar["protocol"]["name"] == "fast"
    assert sidecar["protocol"]["lr"] == 2e-3 and "torch" in sidecar["versions"]

    calls.clear()
    build_reward_table("mnist", "fast", CELLS + [SmallCell(0, 0)], seeds=[0, 1], out_dir=tmp_path,
                       data_root=synthetic_data_root, device="cpu", progress=False)
    assert calls == [(SmallCell(0, 0).to_string(), 0), (SmallCell(0, 0).to_string(), 1)]
    assert len(pd.read_csv(path)) == 6


def test_interrupted_build_keeps_finished_rows(tmp_path, synthetic_data_root, monkeypatch):
    calls = []
    fake = fake_train_child(calls, fail_on=CELLS[1])
    monkeypatch.setattr(builder, "train_child", fake)
    with pytest.raises(KeyboardInterrupt):
        build_reward_table("mnist", "fast", CELLS, out_dir=tmp_path,
                           data_root=synthetic_data_root, device="cpu", progress=False,
                           checkpoint_dir=tmp_path / "checkpoints")
    table = pd.read_csv(tmp_path / "small_mnist_fast.csv")
    assert table["arch"].tolist() == [CELLS[0].to_string()]
    assert not list(tmp_path.glob("*.tmp"))
    # Every run was given the checkpoint folder, so the interrupted one can resume from it.
    assert fake.checkpoint_dirs == [tmp_path / "checkpoints"] * 2


def test_a_pair_another_process_is_training_is_skipped_not_trained_twice(
        tmp_path, synthetic_data_root, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(builder, "train_child", fake_train_child(calls, busy=CELLS[0]))
    path = build_reward_table("mnist", "fast", CELLS, out_dir=tmp_path, data_root=synthetic_data_root,
                              device="cpu", progress=True, checkpoint_dir=tmp_path / "checkpoints")
    assert pd.read_csv(path)["arch"].tolist() == [CELLS[1].to_string()]
    assert f"{CELLS[0].paper_name()} seed 0: skipped, another process is training it" \
        in capsys.readouterr().out


def test_builder_refuses_to_mix_protocols(tmp_path, synthetic_data_root, monkeypatch):
    monkeypatch.setattr(builder, "train_child", fake_train_child([]))
    build_reward_table("mnist", "fast", CELLS[:1], out_dir=tmp_path,
                       data_root=synthetic_data_root, device="cpu", progress=False)
    with pytest.raises(ValueError, match="different protocol"):
        build_reward_table("mnist", "fast", CELLS[:1], out_dir=tmp_path, precision="fp32",
                           data_root=synthetic_data_root, device="cpu", progress=False)


def test_builder_trains_a_real_cell_end_to_end(tmp_path, synthetic_data_root):
    from nas_env.child_net import network_size
    from nas_env.training import Protocol

    tiny = Protocol("fast", epochs=1, lr=2e-3, schedule="onecycle", batch_size=128,
                    checkpoints_per_epoch=1, filters=(8, 16), fc_units=64)
    path = build_reward_table("mnist", tiny, CELLS[:1], out_dir=tmp_path,
                              data_root=synthetic_data_root, device="cpu", progress=False)
    row = pd.read_csv(path).iloc[0]
    assert row["trainable_parameters"] == network_size(CELLS[0])["trainable_parameters"]
    assert 0 <= row["validation_accuracy"] <= 100


def test_builders_sharing_a_table_keep_each_others_rows(tmp_path, synthetic_data_root, monkeypatch):
    """A second builder appends a row while the first trains: the first keeps it and skips it."""
    calls = []
    other_builder = fake_train_child([])
    own_builder = fake_train_child(calls)

    def train(cell, data, protocol, seed, device, precision, on_step=None, **checkpointing):
        if cell == CELLS[0]:  # meanwhile another builder finishes CELLS[1] into the same table
            monkeypatch.setattr(builder, "train_child", other_builder)
            build_reward_table("mnist", "fast", [CELLS[1]], out_dir=tmp_path,
                               data_root=synthetic_data_root, device="cpu", progress=False)
            monkeypatch.setattr(builder, "train_child", train)
        return own_builder(cell, data, protocol, seed, device, precision, on_step)

    monkeypatch.setattr(builder, "train_child", train)
    path = build_reward_table("mnist", "fast", CELLS, out_dir=tmp_path,
                              data_root=synthetic_data_root, device="cpu", progress=False)
    table = pd.read_csv(path)
    assert sorted(table["arch"]) == sorted(c.to_string() for c in CELLS)  # neither row lost
    assert calls == [(CELLS[0].to_string(), 0)]  # CELLS[1] was not trained a second time


def run_builder(*args: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "experiments/build_reward_table.py", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_the_builder_says_what_is_there_and_what_is_to_train(tmp_path, synthetic_data_root,
                                                             monkeypatch, capsys):
    monkeypatch.setattr(builder, "train_child", fake_train_child([]))
    build_reward_table("mnist", "fast", CELLS, out_dir=tmp_path, data_root=synthetic_data_root,
                       device="cpu", progress=False)
    assert "0 of the 2 requested (cell, seed) pairs are there, 2 to train" in capsys.readouterr().out
    build_reward_table("mnist", "fast", CELLS, out_dir=tmp_path, data_root=synthetic_data_root,
                       device="cpu", progress=False)
    out = capsys.readouterr().out
    assert str(tmp_path / "small_mnist_fast.csv") in out and "2 of the 2" in out and "0 to train" in out


def test_the_builder_defaults_to_the_user_data_folder(tmp_path, synthetic_data_root, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data_home"))
    monkeypatch.setattr(builder, "train_child", fake_train_child([]))
    path = build_reward_table("mnist", "fast", CELLS[:1], data_root=synthetic_data_root,
                              device="cpu", progress=False)
    assert path == tmp_path / "data_home" / "nas_env" / "reward_tables" / "small_mnist_fast.csv"


def test_a_missing_data_root_is_one_line_and_writes_nothing(tmp_path):
    done = run_builder("--archs", "0", "--out-dir", str(tmp_path / "out"),
                       "--data-root", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.startswith("build_reward_table.py: error: mnist is not in")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "nowhere").exists()


def test_an_unknown_dataset_writes_no_sidecar(tmp_path, synthetic_data_root):
    with pytest.raises(ValueError, match="dataset='cifar10'; allowed: mnist, fashion_mnist"):
        build_reward_table("cifar10", "fast", CELLS, out_dir=tmp_path, data_root=synthetic_data_root)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sidecar, message", [
    ("{not json", "is not readable JSON"),
    ('{"space": "small", "dataset": "mnist"}', "lacks split_seed, validation_fraction, precision, protocol"),
])
def test_a_foreign_sidecar_is_a_clear_error(tmp_path, synthetic_data_root, sidecar, message):
    from nas_env.benchmark import RewardTableError

    (tmp_path / "small_mnist_fast.json").write_text(sidecar)
    with pytest.raises(RewardTableError, match=message):
        build_reward_table("mnist", "fast", CELLS, out_dir=tmp_path, data_root=synthetic_data_root)


def test_written_files_honour_the_umask(tmp_path, synthetic_data_root, monkeypatch):
    import os

    monkeypatch.setattr(builder, "train_child", fake_train_child([]))
    previous = os.umask(0o022)
    try:
        path = build_reward_table("mnist", "fast", CELLS[:1], out_dir=tmp_path,
                                  data_root=synthetic_data_root, device="cpu", progress=False)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    assert path.with_suffix(".json").stat().st_mode & 0o777 == 0o644


def test_rows_built_elsewhere_merge_into_a_table_without_duplicates(tmp_path, synthetic_data_root,
                                                                    monkeypatch):
    monkeypatch.setattr(builder, "train_child", fake_train_child([]))
    here = build_reward_table("mnist", "fast", CELLS[:1], seeds=[0], out_dir=tmp_path / "here",
                              data_root=synthetic_data_root, device="cpu", progress=False)
    there = build_reward_table("mnist", "fast", CELLS, seeds=[0, 1], out_dir=tmp_path / "there",
                               data_root=synthetic_data_root, device="cpu", progress=False)
    done = subprocess.run([sys.executable, "experiments/merge_table.py", str(there), "--into",
                           str(here)], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 rows added" in done.stdout
    merged = pd.read_csv(here)
    assert sorted(zip(merged["arch"], merged["seed"])) == sorted(
        (c.to_string(), s) for c in CELLS for s in (0, 1))
    assert merge_table_rows(there, here) == 0  # a second merge adds nothing
    other = build_reward_table("mnist", "fast", CELLS[:1], seeds=[0], out_dir=tmp_path / "other",
                               precision="fp32", data_root=synthetic_data_root, device="cpu",
                               progress=False)
    with pytest.raises(ValueError, match="different protocols"):
        merge_table_rows(other, here)


def _builder_script_sending(signum, monkeypatch, synthetic_data_root, tmp_path, *extra_args):
    """``build_reward_table.py`` set up to run in-process on one tiny cell, sending itself
    ``signum`` once, after the first training step, if ``sending[0]`` is true then; returns
    (script, sending)."""
    import signal

    from nas_env.training import Protocol, train_child

    tiny = Protocol("tiny", epochs=1, lr=2e-3, schedule="onecycle", batch_size=64,
                    checkpoints_per_epoch=1, filters=(8, 16), fc_units=64, precision="fp32")
    sending = [True]

    def train_tiny(cell, data, protocol, seed, device, precision, on_step=None, **checkpoints):
        def step_hook(step: int, total: int) -> None:
            if sending[0]:
                sending[0] = False
                signal.raise_signal(signum)
        return train_child(cell, data, tiny, seed=seed, device=device, precision="fp32",
                           on_step=step_hook, measure_latency=False, **checkpoints)

    monkeypatch.setattr(builder, "train_child", train_tiny)
    script = str(Path(__file__).resolve().parents[1] / "experiments" / "build_reward_table.py")
    monkeypatch.setattr(sys, "argv", [
        script, "--archs", str(CELLS[0].index), "--out-dir", str(tmp_path / "out"),
        "--data-root", str(synthetic_data_root), "--device", "cpu", *extra_args])
    return script, sending


def test_sigterm_stops_the_builder_after_a_step_and_the_rerun_finishes_the_row(
        tmp_path, synthetic_data_root, monkeypatch, capsys):
    """The script's wiring: the run it was training is saved, no row is written, status 143."""
    import runpy
    import signal

    from nas_env.run_checkpoint import checkpoint_progress

    script, sending = _builder_script_sending(signal.SIGTERM, monkeypatch, synthetic_data_root,
                                              tmp_path, "--checkpoint-dir",
                                              str(tmp_path / "checkpoints"))
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(script, run_name="__main__")
    assert exited.value.code == 143
    assert "after step 1 of" in capsys.readouterr().err
    assert checkpoint_progress(tmp_path / "checkpoints")[0]["step"] == 1
    assert not (tmp_path / "out" / "small_mnist_fast.csv").exists()
    runpy.run_path(script, run_name="__main__")
    assert len(pd.read_csv(tmp_path / "out" / "small_mnist_fast.csv")) == 1
    assert not list((tmp_path / "checkpoints").glob("*.pt"))


def test_without_checkpoints_ctrl_c_interrupts_the_builder_at_once(
        tmp_path, synthetic_data_root, monkeypatch, capfd, terminal_sigint):
    """With nothing to save a run to, a stop request could not stop it, so the first Ctrl-C is
    the usual KeyboardInterrupt (not a promise to save that the run would never keep)."""
    import runpy
    import signal

    script, _ = _builder_script_sending(signal.SIGINT, monkeypatch, synthetic_data_root,
                                        tmp_path, "--no-checkpoints")
    with pytest.raises(KeyboardInterrupt):
        runpy.run_path(script, run_name="__main__")
    assert "saves its state" not in capfd.readouterr().err
    assert not (tmp_path / "out" / "small_mnist_fast.csv").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_table_of_a_large_cells_is_named_for_its_space(tmp_path, synthetic_data_root, monkeypatch):
    from nas_env.spaces import LargeCell

    large = [LargeCell([(0, 0, "conv3x3", "identity")]), LargeCell([(0, 0, "conv5x5", "identity")])]
    calls = []
    fake = fake_train_child(calls)
    monkeypatch.setattr(builder, "train_child", lambda cell, *a, **k: fake(
        SmallCell(0, 0), *a, **k) | {"arch": cell.to_string()})
    path = build_reward_table("fashion_mnist", "fast", large, seeds=[0], out_dir=tmp_path,
                              data_root=synthetic_data_root, device="cpu", progress=False)
    assert path == tmp_path / "large_fashion_mnist_fast.csv"
    table = pd.read_csv(path)
    assert list(table["arch"]) == [c.to_string() for c in large]
    assert table["arch_index"].isna().all()
    assert json.loads(path.with_suffix(".json").read_text())["space"] == "large"
    with pytest.raises(ValueError, match="one space"):
        build_reward_table("mnist", "fast", large + CELLS, out_dir=tmp_path,
                           data_root=synthetic_data_root, device="cpu", progress=False)
