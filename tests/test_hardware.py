"""What a training record says trained it (``nas_env.hardware``): the CPU's model with the features
that decide its bf16 speed, or the GPU's name."""

from __future__ import annotations

import os

import torch

from nas_env.hardware import cpu_name, device_name, machine

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme avx2 avx512f avx512_bf16 sha_ni
processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme avx2 avx512f avx512_bf16 sha_ni
"""


def test_a_cpu_is_named_by_its_model_and_its_bf16_features(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    assert cpu_name(str(tmp_path / "cpuinfo")) == "AMD EPYC 9R14 (avx2, avx512f, avx512_bf16)"
    (tmp_path / "plain").write_text("model name\t: Some CPU\nflags\t\t: fpu sse2\n")
    assert cpu_name(str(tmp_path / "plain")) == "Some CPU"  # no feature of note: the model alone


def test_without_cpuinfo_the_name_is_what_the_platform_knows(tmp_path):
    name = cpu_name(str(tmp_path / "missing"))
    assert isinstance(name, str) and name and "(" not in name


def test_the_cpu_device_is_named_as_this_machine_s_cpu():
    assert device_name(torch.device("cpu")) == cpu_name()


def test_a_benchmark_names_this_machine_by_its_cpu_and_cpu_count():
    assert machine().startswith(f"{cpu_name()}, {os.cpu_count()} CPUs")
    assert ("; GPU " in machine()) == torch.cuda.is_available()
