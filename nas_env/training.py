"""Train and evaluate one child network under a named protocol.

Protocols are configuration (:mod:`nas_env.protocols`); this module runs one.

A run returns an :class:`~nas_env.results.EvalResult` (see :func:`train_child`). Accuracies are
percentages.

Speed: under ``paper`` and ``fast`` the forward and backward passes run under bf16 autocast;
``cheap`` and the ``loss`` protocols run in fp32, since on a CPU without AVX-512, where PyTorch
emulates bf16, bf16 is many times slower (``docs/fidelity/cheap-history.md``). ``precision="fp32"``
or ``"bf16"`` overrides the protocol's choice. On a CPU the tensors are channels_last in either
precision (:func:`memory_format_for`).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from .child_net import (
    ChildNet,
    count_flops,
    count_parameters,
    network_size,
)
from .data import DataSplits
from .hardware import device_name
from .protocols import PRECISIONS, PROTOCOLS, SCHEDULES, Protocol, get_protocol  # noqa: F401
from .identity import run_identity
from .results import EvalResult
from .run_checkpoint import (
    CHECKPOINT_EVERY,
    RunStopped,
    checkpoint_file,
    claim_run,
    load_checkpoint,
    save_checkpoint,
    stop_requested,
)
from .spaces import LargeCell, SmallCell


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def memory_format_for(device: torch.device, precision: str) -> torch.memory_format:
    """The tensor layout a child net trains and is evaluated in: channels_last on a CPU, in either
    precision (oneDNN's convolutions run faster in it: ``docs/benchmarks.md``, "Tensor layout of
    fp32 training"), and under bf16 on any device; contiguous for fp32 elsewhere."""
    if device.type == "cpu" or precision == "bf16":
        return torch.channels_last
    return torch.contiguous_format


def _steps_at(steps_per_epoch: int, epochs: int, per_epoch: int) -> set[int]:
    """The steps that end each of ``per_epoch`` equal parts of every epoch."""
    return {round(steps_per_epoch * (e + (k + 1) / per_epoch))
            for e in range(epochs) for k in range(per_epoch)}


def late_loss_score(loss_curve: list, diverged: bool) -> float:
    """A ``late_loss`` protocol's score: ``100 * exp(-L)`` for the loss curve's last point ``L``,
    0 for a run that diverged (:attr:`~nas_env.protocols.Protocol.signal`)."""
    if diverged or not loss_curve or not math.isfinite(loss_curve[-1][1]):
        return 0.0
    return 100.0 * math.exp(-loss_curve[-1][1])


def accuracy_of(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32",
                batch_size: int = 256) -> float:
    """Accuracy of ``net`` on ``(x, y)`` in percent, ``batch_size`` images at a time (256: on a
    CPU, batches of 1,000 ran the narrow proxy networks slower per image;
    ``experiments/bench_evaluation_batch.py``)."""
    device = next(net.parameters()).device
    memory_format = memory_format_for(device, precision)
    was_training = net.training
    net.eval()
    correct = 0
    with torch.no_grad(), _autocast(device, precision):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device, memory_format=memory_format)
            correct += (net(xb).argmax(1) == y[i : i + batch_size].to(device)).sum().item()
    net.train(was_training)
    return 100.0 * correct / len(x)


def measure_latency_ms(net: torch.nn.Module, input_shape: tuple[int, ...], repeats: int = 30,
                       warmup: int = 5) -> float:
    """Median CPU inference time of one image: fp32, contiguous tensors, one thread, eval mode,
    after warm-up; the same whatever layout ``net`` was trained in."""
    import copy

    model = copy.deepcopy(net).cpu().float().to(memory_format=torch.contiguous_format).eval()
    x = torch.zeros(input_shape)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                start = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 1000.0 * statistics.median(times)


def train_child(
    cell: SmallCell | LargeCell,
    data: DataSplits,
    protocol: str | Protocol = "fast",
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: str = "auto",
    on_step: Callable[[int, int], None] | None = None,
    measure_latency: bool = True,
    threads: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: float = CHECKPOINT_EVERY,
) -> EvalResult:
    """Train the child net of ``cell`` on ``data`` and evaluate it.

    Touches no global state a caller depends on: the run draws from a forked copy of torch's
    global RNG (seeded with ``seed``), so a controller sampling in the same process sees the same
    random numbers whether or not children were trained in between, and ``threads`` and cuDNN's
    TF32 switch are restored.

    :param cell: the architecture.
    :param data: the splits from :func:`nas_env.data.load_dataset`.
    :param protocol: a name from :data:`PROTOCOLS` or a :class:`Protocol`.
    :param seed: seeds weights, dropout and batch order; same seed and device, same numbers.
    :param device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    :param precision: ``"auto"`` (the protocol's), ``"bf16"`` or ``"fp32"``; ``"fp32"`` is
        full fp32 on CUDA too (cuDNN's TF32 convolutions are off for the run, then restored).
    :param on_step: called as ``on_step(step, total_steps)`` after every optimiser step.
    :param measure_latency: also time CPU inference of the paper-size net.
    :param threads: torch's CPU threads for this run (``None``: leave as is).
    :param checkpoint_dir: save the run's state there every ``checkpoint_every`` seconds of
        training and resume from a state saved earlier for the same run, so an interrupted run
        loses at most that much (:mod:`nas_env.run_checkpoint`); ``None``: no checkpoints.
        ``training_time`` then counts the training of every part of the run.
    :param checkpoint_every: seconds of training between two saves.
    :returns: an :class:`~nas_env.results.EvalResult` with ``source="training"``.
    :raises ~nas_env.run_checkpoint.RunInProgressError: with a ``checkpoint_dir``, if another
        process is training the same run into it now.
    :raises ~nas_env.run_checkpoint.RunStopped: with a ``checkpoint_dir``, after
        :func:`~nas_env.run_checkpoint.request_stop`: the state at the end of the current step
        is saved (before the first step, or before a saved run is resumed, which is then not
        loaded: nothing new to save), and the same call resumes it.
    """
    proto = get_protocol(protocol)
    asked, cell = cell, cell.canonical()
    dev = resolve_device(device)
    precision = proto.precision if precision == "auto" else precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; allowed: 'auto', 'bf16', 'fp32'")
    if not checkpoint_every > 0:
        raise ValueError(f"checkpoint_every={checkpoint_every!r}; allowed: seconds > 0")
    previous_threads, previous_tf32 = torch.get_num_threads(), torch.backends.cudnn.allow_tf32
    if threads is not None:
        torch.set_num_threads(threads)
    # cuDNN runs fp32 convolutions in TF32 by default; fp32 rows must be fp32 on every device.
    torch.backends.cudnn.allow_tf32 = previous_tf32 and precision != "fp32"
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), \
                contextlib.ExitStack() as held:
            torch.manual_seed(seed)
            result = _train(cell, data, proto, seed, dev, precision, on_step, measure_latency,
                            checkpoint_dir, checkpoint_every, held)
            return dict(result, arch=asked.to_string(), hardware=device_name(dev),
                        threads=torch.get_num_threads())
    finally:
        torch.set_num_threads(previous_threads)
        torch.backends.cudnn.allow_tf32 = previous_tf32


def training_identity(cell: SmallCell | LargeCell, data: DataSplits, protocol: Protocol,
                      seed: int, precision: str, device_type: str) -> dict:
    """The run identity (:func:`nas_env.identity.run_identity`) of training ``cell`` on ``data``
    (the whole splits, before the protocol's subsets) under ``protocol``."""
    heads = (protocol.train_images, protocol.val_images, protocol.test_images)
    sizes = [len(x) if n is None else min(len(x), n)
             for x, n in zip((data.train_x, data.val_x, data.test_x), heads)]
    return run_identity(space="small" if isinstance(cell, SmallCell) else "large",
                        arch_key=cell.key, dataset=data.dataset, data=data.record(),
                        split_sizes=sizes, protocol=protocol, seed=seed, precision=precision,
                        device_type=device_type)


def _latency(cell, net: torch.nn.Module, proto: Protocol, input_shape: tuple[int, ...]) -> float:
    """CPU latency of the paper-size network (the trained one, or a fresh one where the protocol
    trained a narrower proxy: latency does not depend on the weights)."""
    full = net if proto.full_size else ChildNet(cell, input_shape[1], input_shape[2])
    return measure_latency_ms(full, input_shape)


def _restore(saved: dict, net, optimizer, scheduler, generator: torch.Generator,
             dev: torch.device) -> None:
    """Put a checkpoint's weights, optimizer and schedule state, batch-order generator and the
    global RNG states back into a run (``saved`` as :func:`load_checkpoint` returned it); the loop
    position and the curve so far are the caller's to take from ``saved``."""
    net.load_state_dict(saved["net"])
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(saved["scheduler"])
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    if dev.type == "cuda":
        torch.cuda.set_rng_state(saved["cuda_rng"], dev)


def _train(cell, data: DataSplits, proto: Protocol, seed: int, dev: torch.device, precision: str,
           on_step, measure_latency: bool, checkpoint_dir, checkpoint_every: float,
           held: contextlib.ExitStack) -> EvalResult:
    """The run itself; ``held`` keeps the run's claim on its checkpoint until the caller's
    ``with`` ends."""
    memory_format = memory_format_for(dev, precision)
    input_shape = (1,) + tuple(data.train_x.shape[1:])
    net = ChildNet(cell, in_channels=input_shape[1], image_size=input_shape[2],
                   filters=proto.filters, fc_units=proto.fc_units)
    # Sizes and latency are the architecture's, so they are always the paper-size network's.
    if proto.full_size:
        sizes = {"trainable_parameters": count_parameters(net),
                 "cell_parameters": count_parameters(net.cells),
                 "flops": count_flops(net, input_shape)}
    else:
        sizes = network_size(cell, input_shape[1], input_shape[2])
    net = net.to(dev, memory_format=memory_format)
    data = data.head(proto.train_images, proto.val_images, proto.test_images).to(dev)

    n_train = len(data.train_x)
    steps_per_epoch = math.ceil(n_train / proto.batch_size)
    total_steps = steps_per_epoch * proto.epochs
    checkpoint_steps = _steps_at(steps_per_epoch, proto.epochs, proto.checkpoints_per_epoch)
    loss_steps = _steps_at(steps_per_epoch, proto.epochs, proto.loss_points)
    # fused Adam: one kernel over all tensors; on CPU about 8x faster than the default for the
    # 25.7M-parameter classifier, whose update otherwise costs as much as its forward and backward.
    optimizer = torch.optim.Adam(net.parameters(), lr=proto.lr, fused=True)
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=proto.lr, total_steps=total_steps)
        if proto.schedule == "onecycle"
        else None
    )
    generator = torch.Generator().manual_seed(seed)

    val_curve: list[list[float]] = []
    loss_curve: list[list[float]] = []
    # Summed on the device, read once per validation checkpoint: no sync per step.
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    segment_start_sum, segment_start_step = 0.0, 0
    nonfinite = torch.zeros((), dtype=torch.bool, device=dev)
    diverged = False
    step = 0
    evaluation_time = earlier_training_time = 0.0
    first_epoch, first_batch, order = 0, 0, None
    path = identity = None
    if checkpoint_dir is not None:
        identity = training_identity(cell, data, proto, seed, precision, dev.type)
        path = checkpoint_file(checkpoint_dir, identity)
        if stop_requested() and path.exists():  # stop before loading (and rewriting) its state
            raise RunStopped(path, 0, total_steps,
                             f"stopped on request before resuming the run saved in {path}")
        held.enter_context(claim_run(path))
        saved = load_checkpoint(path, identity)
        if saved is not None:
            _restore(saved, net, optimizer, scheduler, generator, dev)
            first_epoch, first_batch = saved["epoch"], saved["next_batch"]
            order = saved["order"].to(dev)
            step, val_curve = saved["step"], saved["val_curve"]
            loss_curve = saved["loss_curve"]
            loss_sum += saved["loss_sum"]
            segment_start_sum, segment_start_step = saved["loss_segment"]
            nonfinite |= bool(saved["nonfinite"])
            evaluation_time, earlier_training_time = saved["evaluation_time"], saved["training_time"]

    def save(epoch: int, next_batch: int) -> None:
        save_checkpoint(path, identity, {
            "net": net.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
            "epoch": epoch, "next_batch": next_batch, "order": order.cpu(), "step": step,
            "val_curve": val_curve, "nonfinite": bool(nonfinite),
            "loss_curve": loss_curve, "loss_sum": float(loss_sum),
            "loss_segment": (segment_start_sum, segment_start_step),
            "evaluation_time": evaluation_time,
            "training_time": earlier_training_time + time.perf_counter() - start})

    if path is not None and stop_requested():
        raise RunStopped(path, step, total_steps)
    start = last_save = time.perf_counter()
    net.train()
    for epoch in range(first_epoch, proto.epochs):
        if epoch > first_epoch or order is None:
            order = torch.randperm(n_train, generator=generator).to(dev)
        for i in range(first_batch if epoch == first_epoch else 0, n_train, proto.batch_size):
            idx = order[i : i + proto.batch_size]
            xb = data.train_x[idx].contiguous(memory_format=memory_format)
            with _autocast(dev, precision):
                loss = F.nll_loss(net(xb).float(), data.train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            nonfinite |= ~torch.isfinite(loss.detach())
            loss_sum += loss.detach()
            step += 1
            if on_step is not None:
                on_step(step, total_steps)
            if step in checkpoint_steps or step in loss_steps:
                if bool(nonfinite):
                    diverged = True
                    break
            if step in loss_steps:
                summed = float(loss_sum)
                loss_curve.append([round(step / steps_per_epoch, 4),
                                   (summed - segment_start_sum) / (step - segment_start_step)])
                segment_start_sum, segment_start_step = summed, step
            if step in checkpoint_steps:
                evaluation_start = time.perf_counter()
                val_curve.append([round(step / steps_per_epoch, 4),
                                  accuracy_of(net, data.val_x, data.val_y, precision)])
                evaluation_time += time.perf_counter() - evaluation_start
            if path is not None and step < total_steps:
                stop = stop_requested()
                if stop or time.perf_counter() - last_save >= checkpoint_every:
                    save(epoch, i + proto.batch_size)
                    last_save = time.perf_counter()
                if stop:
                    raise RunStopped(path, step, total_steps)
        if diverged:
            break
    training_time = earlier_training_time + time.perf_counter() - start

    # The last checkpoint falls on the last step, so its figure is the final validation accuracy.
    final_val = (val_curve[-1][1] if not diverged
                 else accuracy_of(net, data.val_x, data.val_y, precision))
    test_accuracy = accuracy_of(net, data.test_x, data.test_y, precision)
    if path is not None:
        path.unlink(missing_ok=True)
    return EvalResult(
        arch=cell.to_string(),
        arch_key=cell.key,
        arch_index=cell.index if isinstance(cell, SmallCell) else None,
        seed=seed,
        num_seeds=1,
        validation_accuracy=final_val,
        test_accuracy=test_accuracy,
        val_curve=val_curve,
        train_loss_sum=float(loss_sum),
        loss_curve=loss_curve,
        score=late_loss_score(loss_curve, diverged) if proto.signal == "late_loss" else None,
        proxy_scores=None,
        training_time=training_time,
        evaluation_time=evaluation_time,
        **sizes,
        latency_ms=_latency(cell, net, proto, input_shape) if measure_latency else None,
        diverged=diverged,
        failure="diverged" if diverged else None,
        source="training",
        dataset=data.dataset,
        protocol=proto.name,
        fidelity=1.0,
        device=dev.type,
        precision=precision,
    )
