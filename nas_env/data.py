"""MNIST and Fashion-MNIST as in-memory tensors, split as in the paper.

The official training set is split into train and validation by a fixed permutation
(:data:`SPLIT_SEED`, 10% validation: 54,000 / 6,000 for the real data); the official test set is
kept whole. Images are scaled to [0, 1], then normalised with the mean and standard deviation of
the train split, and held as one float tensor per split, so training never touches PIL or Python
per sample.

Where the files come from (first that applies):

1. the ``root`` argument (the scripts' ``--data-root`` flag);
2. the ``NAS_ENV_DATA`` environment variable;
3. ``~/.cache/nas_env/datasets`` (or ``$XDG_CACHE_HOME/nas_env/datasets``), downloading there.

A root holds torchvision's layout (``MNIST/raw/*-ubyte``) and may be read-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .identity import dataset_fingerprint
from .paths import ENV_VAR, default_data_root, user_cache_dir  # noqa: F401

DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
"""Each dataset's name and its torchvision class, imported when data is loaded, so that a search
over a reward table does not import torchvision."""
SPLIT_SEED = 0
VALIDATION_FRACTION = 0.1


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are neither in the data root nor downloadable."""


@dataclass(frozen=True)
class DataSplits:
    """Normalised image tensors ``(N, 1, 28, 28)`` and integer labels for each split."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    dataset: str
    root: str
    fingerprint: dict | None = None

    def record(self) -> dict:
        """What identifies this data in a run identity (:mod:`nas_env.identity`): the
        fingerprint of the files it was loaded from and its split rule, or, for splits not loaded
        from files, a SHA-256 of the tensors themselves."""
        if self.fingerprint is not None:
            return dict(self.fingerprint)
        import hashlib

        digest = hashlib.sha256()
        for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
            digest.update(getattr(self, name).detach().cpu().contiguous().numpy().tobytes())
        return {"tensors_sha256": digest.hexdigest(), "train_count": len(self.train_x),
                "test_count": len(self.test_x)}

    def head(self, train: int | None = None, val: int | None = None,
             test: int | None = None) -> "DataSplits":
        """The first ``train`` / ``val`` / ``test`` images of each split (``None``: all of it)."""
        if train is val is test is None:
            return self
        return DataSplits(self.train_x[:train], self.train_y[:train], self.val_x[:val],
                          self.val_y[:val], self.test_x[:test], self.test_y[:test],
                          dataset=self.dataset, root=self.root, fingerprint=self.fingerprint)

    def to(self, device: torch.device | str) -> "DataSplits":
        moved = {k: getattr(self, k).to(device) for k in
                 ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return DataSplits(**moved, dataset=self.dataset, root=self.root,
                          fingerprint=self.fingerprint)


def _load_raw(dataset: str, root: Path, train: bool, download: bool):
    import torchvision

    cls = getattr(torchvision.datasets, DATASETS[dataset])
    folder = root / cls.__name__ / "raw"
    if not download and not folder.is_dir():
        # torchvision would create the folders first; a root the user named may be read-only.
        raise DatasetNotFoundError(
            f"{dataset} is not in {folder}: put the four *-ubyte files there, or point --data-root "
            f"or ${ENV_VAR} at a folder that holds {cls.__name__}/raw/ (with neither, the data is "
            f"downloaded into {user_cache_dir() / 'datasets'})."
        )
    created = [p for p in (folder, folder.parent, root) if not p.exists()]
    try:
        ds = cls(str(root), train=train, download=download)
    except Exception as err:  # torchvision raises several types for "no files, no network"
        for path in created:  # leave no empty folders behind a failed download
            try:
                path.rmdir()
            except OSError:  # not empty (a partial download), or not ours
                break
        raise DatasetNotFoundError(
            f"{dataset} is not in {folder} and could not be "
            f"{'downloaded' if download else 'read'} ({_cause(err)}). Put the four "
            f"*-ubyte files there, or point --data-root or ${ENV_VAR} at a folder that holds "
            f"{cls.__name__}/raw/."
        ) from None
    return ds.data, ds.targets


def _cause(err: Exception) -> str:
    """One line saying why torchvision failed: its message's first line, with the last mirror's
    error where the first line is only a heading (``Error downloading ...:``)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


def _exact_mean_std(images: torch.Tensor) -> tuple[float, float]:
    """Mean and (unbiased) standard deviation of ``images / 255`` from exact integer sums.

    A float reduction's result depends on how many threads split it, so a worker process with
    one thread would normalise the data differently, in the last bits, from a driver with two,
    and the same cell would train to different numbers. Integer sums are the same either way.
    """
    counts = torch.bincount(images.reshape(-1).to(torch.int64), minlength=256).tolist()
    n = sum(counts)
    s1 = sum(k * c for k, c in enumerate(counts))
    s2 = sum(k * k * c for k, c in enumerate(counts))
    mean = s1 / (255.0 * n)
    var = (s2 * n - s1 * s1) / (n * (n - 1)) / 255.0**2
    return mean, var**0.5


def load_dataset(
    dataset: str = "mnist",
    root: str | os.PathLike | None = None,
    split_seed: int = SPLIT_SEED,
    validation_fraction: float = VALIDATION_FRACTION,
) -> DataSplits:
    """Load ``dataset`` (``"mnist"`` or ``"fashion_mnist"``) split into train/validation/test.

    Missing files are downloaded only into the per-user cache (when neither ``root`` nor
    ``$NAS_ENV_DATA`` names a root): a root the user named is only read, and never gains folders.

    :raises DatasetNotFoundError: if the files are not there (one line: where they were looked
        for and how to point at them).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(DATASETS)}")
    named = root is not None or bool(os.environ.get(ENV_VAR))
    data_root = default_data_root(root)
    images, labels = _load_raw(dataset, data_root, train=True, download=not named)
    test_images, test_labels = _load_raw(dataset, data_root, train=False, download=not named)

    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(split_seed))
    n_val = int(round(len(images) * validation_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]

    def scale(x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255.0).unsqueeze(1)

    train_x = scale(images[train_idx])
    mean, std = _exact_mean_std(images[train_idx])

    def norm(x: torch.Tensor) -> torch.Tensor:
        return ((x - mean) / std).contiguous()

    return DataSplits(
        train_x=norm(train_x),
        train_y=labels[train_idx].long(),
        val_x=norm(scale(images[val_idx])),
        val_y=labels[val_idx].long(),
        test_x=norm(scale(test_images)),
        test_y=test_labels.long(),
        dataset=dataset,
        root=str(data_root),
        fingerprint=data_record(dataset, data_root, split_seed, validation_fraction),
    )


def data_record(dataset: str, root: str | os.PathLike | None = None, split_seed: int = SPLIT_SEED,
                validation_fraction: float = VALIDATION_FRACTION) -> dict:
    """The fingerprint of ``dataset``'s files under the data root (resolved as
    :func:`load_dataset` does) with the split rule: what a run identity records of the data,
    known without loading it.

    :raises DatasetNotFoundError: if the files are not there.
    """
    try:
        fingerprint = dataset_fingerprint(dataset, default_data_root(root))
    except FileNotFoundError as err:
        raise DatasetNotFoundError(
            f"{err}. Point --data-root or ${ENV_VAR} at a folder that holds them.") from None
    return {**fingerprint, "split_seed": int(split_seed),
            "validation_fraction": float(validation_fraction)}


def root_is_named(root: str | os.PathLike | None = None) -> bool:
    """Whether the data root was named (``root`` or ``$NAS_ENV_DATA``), so nothing is downloaded."""
    return root is not None or bool(os.environ.get(ENV_VAR))


def known_data_record(dataset: str, root: str | os.PathLike | None,
                      load: "Callable[[], DataSplits]") -> dict:
    """:func:`data_record`, except that where no root was named and the files are missing, the
    data is loaded with ``load()`` (which downloads it into the per-user cache) and its record
    returned.

    :raises DatasetNotFoundError: if the files are neither there nor downloadable.
    """
    try:
        return data_record(dataset, root)
    except DatasetNotFoundError:
        if root_is_named(root):
            raise
        return load().record()
