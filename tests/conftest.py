"""Shared fixtures: a tiny MNIST written in the real IDX file format, loaded by the real loader."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

SYNTHETIC_TRAIN = 300
SYNTHETIC_TEST = 100


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) in the IDX format of the MNIST files."""
    magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def synthetic_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 28x28 images: class ``k`` lights a 7x7 square at a class-specific place, plus noise."""
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 60, size=(n, 28, 28))
    for i, k in enumerate(labels):
        row, col = 2 + 6 * (k // 4), 2 + 6 * (k % 4)
        images[i, row : row + 7, col : col + 7] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_mnist_files(root: Path, folder: str = "MNIST", seed: int = 0) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", SYNTHETIC_TRAIN), ("t10k", SYNTHETIC_TEST)):
        images, labels = synthetic_digits(n, rng)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def synthetic_data_root(tmp_path_factory) -> Path:
    """A data root holding a 300/100-image MNIST and Fashion-MNIST in torchvision's layout."""
    root = tmp_path_factory.mktemp("datasets")
    write_mnist_files(root, "MNIST", seed=0)
    write_mnist_files(root, "FashionMNIST", seed=1)
    return root


@pytest.fixture(scope="session")
def synthetic_data(synthetic_data_root):
    from nas_env.data import load_dataset

    return load_dataset("mnist", synthetic_data_root)


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Tests never reach the network: torchvision's mirrors point at a closed local port."""
    import torchvision

    for cls in (torchvision.datasets.MNIST, torchvision.datasets.FashionMNIST):
        monkeypatch.setattr(cls, "mirrors", ["http://127.0.0.1:9/"])


@pytest.fixture
def terminal_sigint():
    """SIGINT handled as in a Python started from a terminal (``KeyboardInterrupt``) for one test.

    A pytest started as a background job of a non-interactive shell (``nohup ... &``) inherits
    SIGINT ignored, and Python then leaves it ignored; the Ctrl-C tests need the terminal's case.
    """
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def load_script():
    """``load_script(name)``: ``experiments/NAME.py`` loaded as a module (registered in
    ``sys.modules``, where dataclasses look their module up)."""
    import importlib.util
    import sys

    experiments = Path(__file__).resolve().parents[1] / "experiments"

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_script", experiments / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture
def study(tmp_path, synthetic_data_root, load_script):
    """``experiments/exp3_study.py``'s ``main`` with the flags of a tiny study (1-block cells, 8
    per search, synthetic data, no checkpoints) in ``tmp_path / "study"`` and ``extra``."""
    from exp3_support import TINY

    module = load_script("exp3_study")

    def run(*extra: str, protocol: str = TINY) -> int:
        return module.main(["--dataset", "mnist", "--protocol", protocol, "--blocks", "1",
                            "--cells", "8", "--data-root", str(synthetic_data_root),
                            "--out-dir", str(tmp_path / "study"), "--cache-path",
                            str(tmp_path / "cache.sqlite"), "--threads", "1",
                            "--no-checkpoints", *extra])
    return run


@pytest.fixture(scope="session")
def inline_results(synthetic_data_root) -> list[dict]:
    """Each of ``parallel_support.CELLS`` trained inline, one after another: the figures
    (``parallel_support.measured``) that every backend must reproduce."""
    from parallel_support import CELLS, live, measured

    evaluator = live(synthetic_data_root, False)
    results = evaluator.evaluate_batch(CELLS)
    evaluator.close()
    return [measured(r) for r in results]
