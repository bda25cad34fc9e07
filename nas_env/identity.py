"""What determines a training run's numbers: one identity for the cache and the checkpoints.

Two runs with the same identity on the same CPU give the same result (up to the nondeterminism of
the device), so
the evaluation cache serves a stored row only for the identity it was stored under, and a run's
checkpoint file is named by it. The identity holds:

- ``schema``: :data:`SCHEMA_VERSION`, raised whenever what a run records or what it computes
  changes;
- ``space`` and ``arch_key`` (the canonical key: equivalent A_large cells share it);
- ``dataset`` (its name) and ``data``: a fingerprint of the dataset's four files
  (:func:`dataset_fingerprint`) and the split rule, so a row trained on other files under the same
  name (a synthetic test set called ``"mnist"``, a corrupted download) is never served;
- ``split_sizes``: the train, validation and test images the run used (after the protocol's
  subsets);
- ``protocol``: every field of the :class:`~nas_env.protocols.Protocol`;
- ``seed``, ``precision`` (``"bf16"`` or ``"fp32"``, resolved) and ``device_type``
  (``"cpu"``, ``"cuda"``).

It leaves out what changes only how a run rounds, not what it computes: the CPU model (and so
which kernels PyTorch picks), the thread count and the tensor layout
(:func:`nas_env.training.memory_format_for`). On one CPU the same identity gives the same
numbers whatever the thread count; a change of CPU or layout rounds differently, and training
carries that into the figures (on the cells measured in ``docs/benchmarks.md``, "Tensor layout
of fp32 training", by less than a second seed). A row is served across them.

This module imports neither torch nor the dataset loader.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .protocols import Protocol

SCHEMA_VERSION = 2
"""Version of what a result records and how a run is identified (1: the key before identities)."""

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
"""The four files of an MNIST-format dataset, in torchvision's ``{Class}/raw/`` folder."""
RAW_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}

_fingerprints: dict[tuple, dict] = {}


def raw_folder(dataset: str, root: str | os.PathLike) -> Path:
    """The folder that holds ``dataset``'s four files under the data root ``root``."""
    if dataset not in RAW_FOLDERS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(RAW_FOLDERS)}")
    return Path(root) / RAW_FOLDERS[dataset] / "raw"


def _idx_count(path: Path) -> int:
    """The number of items an IDX file's header declares."""
    with open(path, "rb") as f:
        header = f.read(8)
    if len(header) < 8:
        raise ValueError(f"{path} is not an IDX file (shorter than its header)")
    return int.from_bytes(header[4:8], "big")


def dataset_fingerprint(dataset: str, root: str | os.PathLike) -> dict:
    """``{"sha256": ..., "train_count": ..., "test_count": ...}`` of ``dataset``'s four files under
    ``root``: the SHA-256 of their bytes in a fixed order and the image counts their headers
    declare. Computed once per process for each file state (path, size, modification time).

    :raises FileNotFoundError: naming the file that is missing.
    """
    folder = raw_folder(dataset, root)
    paths = [folder / name for name in RAW_FILES]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {dataset} needs the four files "
                                    f"{', '.join(RAW_FILES)} in {folder}")
    state = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    if state not in _fingerprints:
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.name.encode() + b"\0")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        _fingerprints[state] = {"sha256": digest.hexdigest(),
                                "train_count": _idx_count(paths[0]),
                                "test_count": _idx_count(paths[2])}
    return dict(_fingerprints[state])


def split_sizes(fingerprint: dict, protocol: Protocol, validation_fraction: float) -> list[int]:
    """The train, validation and test images a run under ``protocol`` uses on the dataset that
    ``fingerprint`` describes (the split rule of :func:`nas_env.data.load_dataset`, then the
    protocol's subsets)."""
    n_val = int(round(fingerprint["train_count"] * validation_fraction))
    full = (fingerprint["train_count"] - n_val, n_val, fingerprint["test_count"])
    heads = (protocol.train_images, protocol.val_images, protocol.test_images)
    return [n if head is None else min(n, head) for n, head in zip(full, heads)]


def run_identity(*, space: str, arch_key: str, dataset: str, data: dict, split_sizes: list[int],
                 protocol: Protocol | dict, seed: int, precision: str, device_type: str) -> dict:
    """The identity of one training run, as JSON-ready values (see the module docstring).

    :param data: the dataset's fingerprint and split rule (``{"sha256", "train_count",
        "test_count", "split_seed", "validation_fraction"}``; :meth:`DataSplits.fingerprint
        <nas_env.data.DataSplits>` gives it for loaded data).
    """
    record = protocol.as_dict() if isinstance(protocol, Protocol) else dict(protocol)
    record["filters"] = list(record["filters"])
    return {"schema": SCHEMA_VERSION, "space": space, "arch_key": arch_key, "dataset": dataset,
            "data": dict(data), "split_sizes": [int(n) for n in split_sizes],
            "protocol": record, "seed": int(seed), "precision": precision,
            "device_type": device_type}


def identity_hash(identity: dict) -> str:
    """A 32-hex-digit SHA-256 of ``identity``'s canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
