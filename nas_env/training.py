"""Train and evaluate one child network under a named protocol.

Protocols
---------
``paper``
    The paper's: 10 epochs, Adam at a constant lr 1e-4, NLL loss. The paper names no batch size;
    we use 128.
``fast``
    1 epoch, Adam with a one-cycle schedule peaking at lr 2e-3, batch 128, NLL loss.

A run returns a plain dict (see :func:`train_child`). Accuracies are percentages.

Speed: on CPU the forward and backward passes run under bf16 autocast with channels_last
tensors; on CUDA under bf16 autocast (AMP). ``precision="fp32"`` turns both off.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .child_net import ChildNet, count_flops, count_parameters
from .data import DataSplits
from .spaces import LargeCell, SmallCell


@dataclass(frozen=True)
class Protocol:
    """How a child network is trained.

    :param name: the protocol's name.
    :param epochs: passes over the train split.
    :param lr: Adam's learning rate (the peak of the one-cycle schedule).
    :param schedule: ``"constant"`` or ``"onecycle"``.
    :param batch_size: images per step.
    :param checkpoints_per_epoch: validation evaluations per epoch.
    """

    name: str
    epochs: int
    lr: float
    schedule: str
    batch_size: int
    checkpoints_per_epoch: int
    optimizer: str = "adam"
    loss: str = "nll"

    def as_dict(self) -> dict:
        return asdict(self)


PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol("paper", epochs=10, lr=1e-4, schedule="constant", batch_size=128,
                      checkpoints_per_epoch=1),
    "fast": Protocol("fast", epochs=1, lr=2e-3, schedule="onecycle", batch_size=128,
                     checkpoints_per_epoch=4),
}


def get_protocol(protocol: str | Protocol) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32",
             batch_size: int = 1000) -> float:
    """Accuracy of ``net`` on ``(x, y)`` in percent."""
    device = next(net.parameters()).device
    memory_format = torch.channels_last if precision == "bf16" else torch.contiguous_format
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
    """Median CPU inference time of one image: fp32, one thread, eval mode, after warm-up."""
    import copy

    model = copy.deepcopy(net).cpu().float().eval()
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
) -> dict:
    """Train the child net of ``cell`` on ``data`` and evaluate it.

    :param cell: the architecture.
    :param data: the splits from :func:`nas_env.data.load_dataset`.
    :param protocol: ``"paper"``, ``"fast"`` or a :class:`Protocol`.
    :param seed: seeds weights, dropout and batch order; same seed and device, same numbers.
    :param device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    :param precision: ``"auto"`` (bf16 autocast), ``"bf16"`` or ``"fp32"``.
    :param on_step: called as ``on_step(step, total_steps)`` after every optimiser step.
    :param measure_latency: also time CPU inference of the trained net.
    :returns: a dict with ``validation_accuracy``, ``test_accuracy`` (final, percent),
        ``val_curve`` (list of ``[epoch, validation_accuracy]``), ``training_time`` (seconds),
        ``trainable_parameters``, ``cell_parameters``, ``flops`` (MACs per image),
        ``latency_ms``, ``diverged``, ``seed``, ``device``, ``precision`` and ``protocol``.
    """
    proto = get_protocol(protocol)
    dev = resolve_device(device)
    precision = "bf16" if precision == "auto" else precision
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision={precision!r}; allowed: 'auto', 'bf16', 'fp32'")
    memory_format = torch.channels_last if precision == "bf16" else torch.contiguous_format

    torch.manual_seed(seed)
    input_shape = (1,) + tuple(data.train_x.shape[1:])
    net = ChildNet(cell, in_channels=input_shape[1], image_size=input_shape[2])
    trainable_parameters = count_parameters(net)
    cell_parameters = count_parameters(net.cells)
    flops = count_flops(net, input_shape)
    net = net.to(dev, memory_format=memory_format)
    data = data.to(dev)

    n_train = len(data.train_x)
    steps_per_epoch = math.ceil(n_train / proto.batch_size)
    total_steps = steps_per_epoch * proto.epochs
    checkpoint_steps = {
        round(steps_per_epoch * (e + (k + 1) / proto.checkpoints_per_epoch))
        for e in range(proto.epochs) for k in range(proto.checkpoints_per_epoch)
    }
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
    nonfinite = torch.zeros((), dtype=torch.bool, device=dev)
    diverged = False
    step = 0
    start = time.perf_counter()
    net.train()
    for _ in range(proto.epochs):
        order = torch.randperm(n_train, generator=generator).to(dev)
        for i in range(0, n_train, proto.batch_size):
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
            step += 1
            if on_step is not None:
                on_step(step, total_steps)
            if step in checkpoint_steps:
                if bool(nonfinite):
                    diverged = True
                    break
                val_curve.append([round(step / steps_per_epoch, 4),
                                  evaluate(net, data.val_x, data.val_y, precision)])
        if diverged:
            break
    training_time = time.perf_counter() - start

    # The last checkpoint falls on the last step, so its figure is the final validation accuracy.
    final_val = val_curve[-1][1] if not diverged else evaluate(net, data.val_x, data.val_y, precision)
    return {
        "validation_accuracy": final_val,
        "test_accuracy": evaluate(net, data.test_x, data.test_y, precision),
        "val_curve": val_curve,
        "training_time": training_time,
        "trainable_parameters": trainable_parameters,
        "cell_parameters": cell_parameters,
        "flops": flops,
        "latency_ms": measure_latency_ms(net, input_shape) if measure_latency else float("nan"),
        "diverged": diverged,
        "seed": seed,
        "device": dev.type,
        "precision": precision,
        "protocol": proto.name,
    }
