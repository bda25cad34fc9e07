"""Training throughput of child networks: plain fp32 against the path train_child uses for bf16.

Prints images/second per cell for plain fp32 (contiguous tensors, no autocast) and for the path
of the bf16 protocols (``paper``, ``fast``: bf16 autocast + channels_last), on the same nets,
same data. ``bench_memory_format.py`` compares the two layouts in fp32.

    python experiments/bench_child_training.py --steps 20
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nas_env.child_net import ChildNet
from nas_env.hardware import machine
from nas_env.spaces import SmallCell, parse_architecture
from nas_env.training import resolve_device

DEFAULT_CELLS = ";".join(
    c.to_string() for c in (
        SmallCell("conv3x3", "max_pool2x2"), SmallCell("conv7x7", "conv7x7"),
        SmallCell("sep_conv3x3", "avg_pool2x2"), SmallCell("identity", "identity"),
    )
)


def seconds_per_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str,
                     steps: int, warmup: int = 3) -> float:
    """Mean wall time of one training step of ``net`` on ``(x, y)`` after ``warmup`` untimed ones:
    forward (under bf16 autocast if ``precision`` is ``"bf16"``), NLL loss, backward, fused Adam."""
    device = x.device
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.nll_loss(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def images_per_second(cell, device: torch.device, precision: str, steps: int, batch: int) -> float:
    torch.manual_seed(0)
    fmt = torch.channels_last if precision == "bf16" else torch.contiguous_format
    net = ChildNet(cell).to(device, memory_format=fmt)
    x = torch.randn(batch, 1, 28, 28, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)
    return batch / seconds_per_step(net, x, y, precision, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default=DEFAULT_CELLS, help="';'-separated cell string forms")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    device = resolve_device(args.device)
    print(f"device={device.type} threads={torch.get_num_threads()} batch={args.batch_size} steps={args.steps}")
    print(f"{'cell':<34} {'fp32 img/s':>11} {'bf16 img/s':>11} {'speed-up':>9}")
    speedups = []
    for text in args.cells.split(";"):
        cell = parse_architecture(text)
        fp32 = images_per_second(cell, device, "fp32", args.steps, args.batch_size)
        bf16 = images_per_second(cell, device, "bf16", args.steps, args.batch_size)
        speedups.append(bf16 / fp32)
        name = cell.paper_name() if isinstance(cell, SmallCell) else text
        print(f"{name:<34} {fp32:>11.0f} {bf16:>11.0f} {bf16 / fp32:>8.2f}x")
    geo = torch.tensor(speedups).log().mean().exp().item()
    print(f"geometric-mean speed-up: {geo:.2f}x")


if __name__ == "__main__":
    main()
