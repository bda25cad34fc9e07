"""What a training run ran on, in words, for its record (:class:`~nas_env.results.EvalResult`'s
``hardware``): a GPU's name, or a CPU's model with the vector features that decide how fast it
trains in bf16 (``avx512_bf16`` and ``amx_bf16`` compute it natively; without them it is
emulated and slow, see ``docs/training.md``).
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import torch

BF16_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
"""The CPU flags (as Linux's ``/proc/cpuinfo`` spells them) named after a CPU's model."""


@functools.lru_cache(maxsize=None)
def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """This machine's CPU model and which of :data:`BF16_FEATURES` it has, e.g. ``"AMD EPYC
    (avx2, avx512f, avx512_bf16)"``; where ``cpuinfo`` cannot be read (not Linux), what
    :mod:`platform` knows of the processor, without features."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    flags = set(fields.get("flags", "").split())
    features = [f for f in BF16_FEATURES if f in flags]
    return f"{model} ({', '.join(features)})" if features else model


def device_name(device: torch.device) -> str:
    """The name of what ``device`` computes on: the GPU's (``torch.cuda.get_device_name``) or
    :func:`cpu_name`."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def machine() -> str:
    """This machine in one line, as a benchmark names it beside its figures: the CPU
    (:func:`cpu_name`), its logical CPUs, and the first GPU torch sees, if any."""
    text = f"{cpu_name()}, {os.cpu_count()} CPUs"
    if torch.cuda.is_available():
        text += f"; GPU {device_name(torch.device('cuda', 0))}"
    return text
