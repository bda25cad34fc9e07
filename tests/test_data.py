import os
import stat
from pathlib import Path

import pytest
import torch

from nas_env.data import DatasetNotFoundError, default_data_root, load_dataset

REAL_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
REAL_ROOT = Path(os.environ.get("NAS_ENV_DATA", REAL_ROOT))


def test_split_sizes_normalisation_and_determinism(synthetic_data_root):
    data = load_dataset("mnist", synthetic_data_root)
    assert data.train_x.shape == (270, 1, 28, 28)
    assert data.val_x.shape == (30, 1, 28, 28)
    assert data.test_x.shape == (100, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert abs(data.train_x.mean().item()) < 1e-4
    assert abs(data.train_x.std().item() - 1) < 1e-4
    again = load_dataset("mnist", synthetic_data_root)
    assert torch.equal(data.val_y, again.val_y) and torch.equal(data.val_x, again.val_x)
    other = load_dataset("mnist", synthetic_data_root, split_seed=1)
    assert not torch.equal(data.val_x, other.val_x)


def test_fashion_mnist_loads_from_its_own_folder(synthetic_data_root):
    data = load_dataset("fashion_mnist", synthetic_data_root)
    assert data.dataset == "fashion_mnist" and len(data.test_y) == 100


def test_read_only_root_works(tmp_path, synthetic_data_root):
    import shutil

    root = tmp_path / "ro"
    shutil.copytree(synthetic_data_root / "MNIST", root / "MNIST")
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        assert len(load_dataset("mnist", root).train_y) == 270
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_missing_dataset_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "NAS_ENV_DATA" in message and "--data-root" in message
    assert "\n" not in message


def test_a_named_root_is_never_written_to(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match="nowhere/MNIST/raw"):
        load_dataset("mnist", missing)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError):
        load_dataset("mnist", empty)
    assert list(empty.iterdir()) == []  # torchvision's download step did not create MNIST/raw


def test_only_the_default_root_downloads(monkeypatch, tmp_path):
    """With no root named, a missing dataset is fetched into the user cache (here from a closed
    port, so the error names the download)."""
    monkeypatch.delenv("NAS_ENV_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match="could not be downloaded") as info:
        load_dataset("mnist")
    # The cause is named (the mirror's error), on one line, and no empty folder is left behind.
    cause = str(info.value).split("(", 1)[1]
    assert "Error downloading" in cause and "ownloading train-images-idx3-ubyte.gz: " in cause
    assert not cause.startswith("Error downloading train-images-idx3-ubyte.gz:)")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache" / "nas_env" / "datasets" / "MNIST").exists()


def test_unknown_dataset_lists_allowed():
    with pytest.raises(ValueError, match="allowed: mnist, fashion_mnist"):
        load_dataset("cifar10")


def test_data_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_ENV_DATA", str(tmp_path / "env"))
    assert default_data_root(tmp_path / "flag") == tmp_path / "flag"
    assert default_data_root() == tmp_path / "env"
    monkeypatch.delenv("NAS_ENV_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_data_root() == tmp_path / "cache" / "nas_env" / "datasets"


@pytest.mark.mnist
@pytest.mark.skipif(not (REAL_ROOT / "MNIST" / "raw").is_dir(), reason="real MNIST files absent")
def test_real_mnist_has_the_papers_split():
    data = load_dataset("mnist", REAL_ROOT)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (54_000, 6_000, 10_000)
    assert set(data.val_y.tolist()) == set(range(10))
