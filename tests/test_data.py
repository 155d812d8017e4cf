"""Loading MNIST through torchvision: folders, download failure, corrupt files, normalization, subsets."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from mnist_core.data import MEAN, STD, load_split, normalize, normalized, resolve_data_dir, subset_indices
from mnist_core.errors import DatasetError
from mnist_core.testing import synthetic_digits, write_idx

# The file names torchvision's MNIST reads, written out here rather than taken from the code under test.
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def test_tiny_idx_loads_through_torchvision_as_pixels_normalized_on_the_way_in(tiny_data):
    split = load_split("train", tiny_data)
    images, labels = synthetic_digits(600, seed=1)
    assert split.images.shape == (600, 1, 28, 28) and split.images.dtype == torch.uint8
    assert torch.equal(split.raw(), torch.from_numpy(images))
    assert torch.equal(split.labels, torch.from_numpy(labels).long())
    expected = (torch.from_numpy(images).float() / 255 - MEAN) / STD
    assert torch.allclose(normalized(split.images)[:, 0], expected, atol=1e-6)


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    assert str(resolve_data_dir()) == "data"
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"


def test_missing_data_offline_names_folder_variable_and_files(tmp_path, monkeypatch):
    # No network here; on a machine with one, make sure the download cannot succeed either.
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetError) as info:
        load_split("test", tmp_path / "empty")
    message = str(info.value)
    assert str((tmp_path / "empty").resolve()) in message
    assert "MNIST_DATA_DIR" in message and "--data-dir" in message
    for pair in IDX_NAMES.values():
        for name in pair:
            assert name in message


def test_truncated_images_file_is_a_clear_error(tiny_data):
    raw = tiny_data / "MNIST" / "raw" / IDX_NAMES["test"][0]
    raw.write_bytes(raw.read_bytes()[:5000])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        load_split("test", tiny_data)


def test_foreign_file_is_a_clear_error(tiny_data):
    (tiny_data / "MNIST" / "raw" / IDX_NAMES["test"][1]).write_bytes(b"<html>not found</html>")
    with pytest.raises(DatasetError):
        load_split("test", tiny_data)


def test_mismatched_counts_are_refused(tmp_path):
    images, labels = synthetic_digits(20, seed=0)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", images, labels)
    write_idx(raw, "test", images, labels)
    label_file = raw / IDX_NAMES["test"][1]
    label_file.write_bytes(struct.pack(">II", 0x801, 10) + labels[:10].astype(np.uint8).tobytes())
    with pytest.raises(DatasetError, match="do not match"):
        load_split("test", tmp_path)


def test_changed_files_are_reloaded(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", *synthetic_digits(20, seed=0))
    write_idx(raw, "test", *synthetic_digits(20, seed=0))
    assert len(load_split("test", tmp_path)) == 20
    write_idx(raw, "test", *synthetic_digits(30, seed=0))
    assert len(load_split("test", tmp_path)) == 30


def test_unknown_split_is_refused(tiny_data):
    with pytest.raises(DatasetError, match="Unknown split"):
        load_split("validation", tiny_data)


def test_normalized_takes_pixels_and_passes_model_input_through():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(16, 16)
    floats = normalize(pixels)
    assert floats.dtype == torch.float32 and torch.equal(normalized(pixels), floats)
    assert normalized(floats) is floats  # already model input: not normalized twice
    assert floats[0, 0].item() == pytest.approx(-MEAN / STD) and floats[-1, -1].item() == pytest.approx((1 - MEAN) / STD)


def test_subset_is_fixed_sorted_and_unique():
    first, second = subset_indices(1000, 100), subset_indices(1000, 100)
    assert torch.equal(first, second)
    assert len(set(first.tolist())) == 100 and torch.equal(first, first.sort().values)
    assert subset_indices(1000, None) is None and subset_indices(1000, 1000) is None


@pytest.mark.slow  # reads the real MNIST
def test_real_mnist_checksums_and_statistics(real_data):
    train = load_split("train", real_data)
    test = load_split("test", real_data)
    assert (len(train), len(test)) == (60000, 10000)
    pixels = train.raw().float() / 255
    # The normalization constants are the training set's own mean and std.
    assert abs(pixels.mean().item() - MEAN) < 5e-4 and abs(pixels.std().item() - STD) < 5e-4
    assert torch.bincount(test.labels).tolist()[:3] == [980, 1135, 1032]
