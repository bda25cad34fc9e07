import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas_env.hardware import cpu_name
from nas_env.spaces import SmallCell
from nas_env.training import (
    PROTOCOLS,
    Protocol,
    get_protocol,
    measure_latency_ms,
    memory_format_for,
    train_child,
)

# A narrow proxy (sizes are still reported for the paper-size net): on a CPU without AVX-512,
# bf16 is emulated and the paper-size net took about 100 s per run here.
TINY = Protocol("tiny", epochs=2, lr=2e-3, schedule="onecycle", batch_size=64, checkpoints_per_epoch=2,
                filters=(8, 16), fc_units=64)
CELL = SmallCell("conv3x3", "max_pool2x2")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(synthetic_data):
    return train_child(CELL, synthetic_data, TINY, seed=0, device="cpu")


def test_run_reports_every_figure_a_table_needs(run):
    for key in ("validation_accuracy", "test_accuracy", "training_time", "trainable_parameters",
                "cell_parameters", "flops", "latency_ms", "seed", "device", "precision"):
        assert key in run
    assert 0 <= run["validation_accuracy"] <= 100 and 0 <= run["test_accuracy"] <= 100
    assert [epoch for epoch, _ in run["val_curve"]] == [0.4, 1.0, 1.6, 2.0]  # 5 steps per epoch
    assert run["val_curve"][-1][1] == run["validation_accuracy"]
    assert run["latency_ms"] > 0 and run["training_time"] > 0
    # The validation checkpoints are part of the training loop's time, and recorded apart.
    assert 0 < run["evaluation_time"] < run["training_time"]
    assert run["trainable_parameters"] == 25_809_866 and run["cell_parameters"] == 74_688
    assert run["device"] == "cpu" and run["precision"] == "bf16" and not run["diverged"]
    # What trained it: this machine's CPU, with the threads torch had (none were asked for).
    assert run["hardware"] == cpu_name() and run["threads"] == torch.get_num_threads()


def test_cpu_trains_channels_last_in_either_precision_and_cuda_fp32_stays_contiguous():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert memory_format_for(cpu, "fp32") == torch.channels_last
    assert memory_format_for(cpu, "bf16") == torch.channels_last
    assert memory_format_for(cuda, "bf16") == torch.channels_last
    assert memory_format_for(cuda, "fp32") == torch.contiguous_format


def test_latency_leaves_the_measured_network_in_its_layout():
    from nas_env.child_net import ChildNet

    net = ChildNet(CELL, filters=(8, 16), fc_units=64).to(memory_format=torch.channels_last)
    assert measure_latency_ms(net, (1, 1, 28, 28), repeats=3, warmup=1) > 0
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_learns_the_synthetic_digits(run):
    assert run["validation_accuracy"] > 50  # chance is 10%


def test_same_seed_same_numbers(run, synthetic_data):
    again = train_child(CELL, synthetic_data, TINY, seed=0, device="cpu")
    assert again["val_curve"] == run["val_curve"]
    assert again["test_accuracy"] == run["test_accuracy"]


def test_divergence_is_reported_not_raised(synthetic_data):
    exploding = dataclasses.replace(TINY, lr=1e30, schedule="constant")
    result = train_child(CELL, synthetic_data, exploding, seed=0, device="cpu",
                         measure_latency=False)
    assert result["diverged"] is True
    assert result["latency_ms"] is None


def test_protocols_match_the_issue():
    assert PROTOCOLS["paper"].epochs == 10 and PROTOCOLS["paper"].lr == 1e-4
    assert PROTOCOLS["paper"].schedule == "constant"
    assert PROTOCOLS["fast"].epochs == 1 and PROTOCOLS["fast"].lr == 2e-3
    assert PROTOCOLS["fast"].schedule == "onecycle" and PROTOCOLS["fast"].checkpoints_per_epoch >= 4
    with pytest.raises(ValueError, match="allowed: paper, fast"):
        get_protocol("slow")


@pytest.mark.parametrize("field", [{"optimizer": "sgd"}, {"loss": "mse"}, {"schedule": "cosine"}])
def test_a_protocol_states_only_what_train_child_does(field):
    record = {**PROTOCOLS["fast"].as_dict(), **field}
    with pytest.raises(ValueError, match="allowed|implements"):
        Protocol.from_dict(record)


class _Interrupt(Exception):
    pass


def _stop_at(stop_step: int):
    def on_step(step: int, total: int) -> None:
        if step == stop_step:
            raise _Interrupt
    return on_step


@pytest.mark.parametrize("stop_step", [3, 6, 9])  # inside epoch 1, right after it, inside epoch 2
def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_numbers(
        synthetic_data, tmp_path, stop_step):
    fp32 = dataclasses.replace(TINY, precision="fp32")
    whole = train_child(CELL, synthetic_data, fp32, seed=3, device="cpu", measure_latency=False)
    with pytest.raises(_Interrupt):
        # checkpoint_every tiny: a save after every step, the last one before the interrupt
        train_child(CELL, synthetic_data, fp32, seed=3, device="cpu", measure_latency=False,
                    checkpoint_dir=tmp_path, checkpoint_every=1e-9, on_step=_stop_at(stop_step))
    assert len(list(tmp_path.glob("*.pt"))) == 1 and not list(tmp_path.glob("*.tmp"))
    steps = []
    resumed = train_child(CELL, synthetic_data, fp32, seed=3, device="cpu", measure_latency=False,
                          checkpoint_dir=tmp_path, on_step=lambda step, total: steps.append(step))
    assert steps[0] == stop_step and steps[-1] == 10  # 5 steps per epoch, 2 epochs
    assert resumed["val_curve"] == whole["val_curve"]
    assert resumed["loss_curve"] == whole["loss_curve"]
    assert resumed["train_loss_sum"] == pytest.approx(whole["train_loss_sum"], rel=1e-12)
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    assert resumed["validation_accuracy"] == whole["validation_accuracy"]
    assert resumed["training_time"] > 0
    assert not list(tmp_path.glob("*.pt"))  # a finished run deletes its checkpoint


def test_a_checkpoint_serves_only_its_own_run(synthetic_data, tmp_path):
    from nas_env.run_checkpoint import checkpoint_file, checkpoint_progress, load_checkpoint

    fp32 = dataclasses.replace(TINY, precision="fp32")
    with pytest.raises(_Interrupt):
        train_child(CELL, synthetic_data, fp32, seed=0, device="cpu", measure_latency=False,
                    checkpoint_dir=tmp_path, checkpoint_every=1e-9, on_step=_stop_at(4))
    (path,) = tmp_path.glob("*.pt")
    (progress,) = checkpoint_progress(tmp_path)  # saved after step 3, interrupted in step 4
    assert (progress["step"], progress["total_steps"], progress["seed"]) == (3, 10, 0)
    assert progress["arch_key"] == CELL.key and progress["protocol"] == "tiny"
    assert progress["training_time"] > 0
    shown = subprocess.run([sys.executable, "experiments/checkpoint_status.py", "--checkpoint-dir",
                            str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "hours_to_go" in shown.stdout
    assert " tiny " in shown.stdout and CELL.key in shown.stdout
    # Another seed is another run: it starts from scratch beside the first one's file.
    steps = []
    train_child(CELL, synthetic_data, fp32, seed=1, device="cpu", measure_latency=False,
                checkpoint_dir=tmp_path, on_step=lambda step, total: steps.append(step))
    assert steps[0] == 1 and path.exists()
    other = {"schema": 2, "space": "large", "arch_key": "x", "dataset": "mnist", "data": {},
             "split_sizes": [1, 1, 1], "protocol": {}, "seed": 0, "precision": "fp32",
             "device_type": "cpu"}
    with pytest.raises(ValueError, match="belongs to another run"):
        load_checkpoint(path, other)
    assert checkpoint_file(tmp_path, other) != path
    with pytest.raises(ValueError, match="checkpoint_every"):
        train_child(CELL, synthetic_data, fp32, checkpoint_dir=tmp_path, checkpoint_every=0)


def test_a_run_another_process_is_training_is_refused_and_shown_running(synthetic_data, tmp_path):
    from nas_env.run_checkpoint import (
        RunInProgressError, checkpoint_progress, claim_run, run_in_progress)

    fp32 = dataclasses.replace(TINY, precision="fp32")
    with pytest.raises(_Interrupt):
        train_child(CELL, synthetic_data, fp32, seed=0, device="cpu", measure_latency=False,
                    checkpoint_dir=tmp_path, checkpoint_every=1e-9, on_step=_stop_at(4))
    (path,) = tmp_path.glob("*.pt")
    assert not run_in_progress(path) and not checkpoint_progress(tmp_path)[0]["running"]
    assert not run_in_progress(path)  # an interrupted run leaves no claim (its lock file stays)
    # Another process resuming the run holds its lock (flock: held per open file, so a second
    # open in this process stands for a second process).
    with claim_run(path):
        assert run_in_progress(path) and checkpoint_progress(tmp_path)[0]["running"]
        with pytest.raises(RunInProgressError, match="another process is training"):
            train_child(CELL, synthetic_data, fp32, seed=0, device="cpu", measure_latency=False,
                        checkpoint_dir=tmp_path)
        assert checkpoint_progress(tmp_path)[0]["step"] == 3  # its checkpoint is untouched
    resumed = train_child(CELL, synthetic_data, fp32, seed=0, device="cpu", measure_latency=False,
                          checkpoint_dir=tmp_path)
    assert resumed["val_curve"] and not list(tmp_path.glob("*.pt"))


def _no_load(path, identity):
    raise AssertionError(f"loaded {path} while a stop request stands")


def test_a_stop_request_saves_the_step_it_ends_and_the_run_resumes_to_the_same_numbers(
        synthetic_data, tmp_path, monkeypatch):
    from nas_env.run_checkpoint import (
        RunStopped, checkpoint_progress, clear_stop_request, request_stop)

    fp32 = dataclasses.replace(TINY, precision="fp32")
    whole = train_child(CELL, synthetic_data, fp32, seed=3, device="cpu", measure_latency=False)

    def stop_at_4(step: int, total: int) -> None:
        if step == 4:
            request_stop()

    try:
        # The default checkpoint_every (300 s) saves nothing in this run: the stop saves step 4.
        with pytest.raises(RunStopped, match="after step 4 of 10"):
            train_child(CELL, synthetic_data, fp32, seed=3, device="cpu", measure_latency=False,
                        checkpoint_dir=tmp_path, on_step=stop_at_4)
        # While the request stands, a run with checkpoints does not start; one without ignores it.
        with pytest.raises(RunStopped, match="before its first step"):
            train_child(CELL, synthetic_data, fp32, seed=4, device="cpu", measure_latency=False,
                        checkpoint_dir=tmp_path)
        # nor is a saved run resumed: its 300 MB state is not even loaded (a builder that
        # finished a row after the request would otherwise load the next saved run to stop).
        with monkeypatch.context() as patched:
            patched.setattr("nas_env.training.load_checkpoint", _no_load)
            with pytest.raises(RunStopped, match="before resuming the run saved in"):
                train_child(CELL, synthetic_data, fp32, seed=3, device="cpu",
                            measure_latency=False, checkpoint_dir=tmp_path)
        unsaved = train_child(CELL, synthetic_data, fp32, seed=3, device="cpu",
                              measure_latency=False)
    finally:
        clear_stop_request()
    assert unsaved["val_curve"] == whole["val_curve"]
    (progress,) = checkpoint_progress(tmp_path)  # the run that did not start saved nothing
    assert progress["step"] == 4 and progress["seed"] == 3
    assert not list(tmp_path.glob("*.tmp"))
    steps = []
    resumed = train_child(CELL, synthetic_data, fp32, seed=3, device="cpu", measure_latency=False,
                          checkpoint_dir=tmp_path, on_step=lambda step, total: steps.append(step))
    assert steps == list(range(5, 11))
    assert resumed["val_curve"] == whole["val_curve"]
    assert resumed["loss_curve"] == whole["loss_curve"]
    assert resumed["train_loss_sum"] == pytest.approx(whole["train_loss_sum"], rel=1e-12)
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    assert not list(tmp_path.glob("*.pt"))


def test_sigterm_in_a_script_saves_the_run_after_its_step_and_exits_143(
        synthetic_data, tmp_path, capfd):
    import signal

    from nas_env.run_checkpoint import checkpoint_progress, stop_on_signals, stop_requested

    def terminate_at_2(step: int, total: int) -> None:
        if step == 2:
            signal.raise_signal(signal.SIGTERM)

    fp32 = dataclasses.replace(TINY, precision="fp32")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exited, stop_on_signals(program="script.py"):
        train_child(CELL, synthetic_data, fp32, seed=0, device="cpu", measure_latency=False,
                    checkpoint_dir=tmp_path, on_step=terminate_at_2)
    assert exited.value.code == 143
    err = capfd.readouterr().err
    assert "script.py: SIGTERM: the run in training saves its state" in err
    assert "after step 2 of 10" in err and "run the same command again to resume" in err
    assert signal.getsignal(signal.SIGTERM) is before and not stop_requested()
    assert checkpoint_progress(tmp_path)[0]["step"] == 2


def test_a_second_ctrl_c_interrupts_at_once_and_an_ignored_signal_stays_ignored(terminal_sigint):
    import signal

    from nas_env.run_checkpoint import stop_on_signals, stop_requested

    with pytest.raises(KeyboardInterrupt), stop_on_signals(program="script.py"):
        signal.raise_signal(signal.SIGINT)
        assert stop_requested()
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("the second Ctrl-C did not interrupt")
    assert not stop_requested() and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as nohup's background jobs have it
    try:
        with stop_on_signals():
            signal.raise_signal(signal.SIGINT)
            assert not stop_requested()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_fp32_is_full_fp32_during_the_run_and_the_tf32_switch_is_restored(synthetic_data):
    seen = []
    fp32 = dataclasses.replace(TINY, precision="fp32")
    before = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        train_child(CELL, synthetic_data, fp32, seed=0, device="cpu", measure_latency=False,
                    on_step=lambda step, total: seen.append(torch.backends.cudnn.allow_tf32))
        assert seen and not any(seen) and torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated"])
def test_an_unreadable_checkpoint_is_moved_aside_and_the_run_starts_again(
        synthetic_data, tmp_path, damage):
    from nas_env.run_checkpoint import checkpoint_file
    from nas_env.training import training_identity

    fp32 = dataclasses.replace(TINY, precision="fp32")
    whole = train_child(CELL, synthetic_data, fp32, seed=0, device="cpu", measure_latency=False)
    path = checkpoint_file(tmp_path, training_identity(CELL, synthetic_data, fp32, 0, "fp32", "cpu"))
    path.write_bytes(damage)  # an empty file, or a save cut short
    stale = path.with_name(f"{path.name}.999999.tmp")  # a save whose process was killed
    stale.write_bytes(b"x" * 1000)
    with pytest.warns(RuntimeWarning, match="could not be read"):
        again = train_child(CELL, synthetic_data, fp32, seed=0, device="cpu",
                            measure_latency=False, checkpoint_dir=tmp_path)
    assert again["val_curve"] == whole["val_curve"]
    assert path.with_name(f"{path.name}.unreadable").read_bytes() == damage
    assert not stale.exists() and not path.exists()


def test_whether_a_run_is_in_progress_is_answered_without_taking_its_lock(tmp_path, monkeypatch):
    import filelock

    from nas_env.run_checkpoint import claim_run, run_in_progress

    path = tmp_path / "run.pt"
    with claim_run(path):
        def refuse(*args, **kwargs):
            raise AssertionError("run_in_progress took the lock")

        monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
        assert run_in_progress(path)
        monkeypatch.undo()
    assert (tmp_path / "run.pt.lock").exists()  # kept: deleting it would split the lock
    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    assert not run_in_progress(path)
