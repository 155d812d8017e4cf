"""The direct IDX reader: files this test writes byte by byte, and the errors a user sees for bad ones."""

from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from mnist_core.data import load_split
from mnist_core.errors import DatasetError
from mnist_core.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxError, read_idx
from mnist_core.testing import synthetic_digits, write_idx


def _images_file(path, pixels: np.ndarray) -> None:
    n, rows, cols = pixels.shape
    path.write_bytes(struct.pack(">IIII", 0x803, n, rows, cols) + pixels.tobytes())


def test_reads_pixels_in_file_order_with_the_header_shape(tmp_path):
    pixels = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
    _images_file(tmp_path / "images", pixels)
    read = read_idx(tmp_path / "images", IMAGES_MAGIC)
    assert read.dtype == np.uint8 and read.shape == (3, 28, 28)
    assert np.array_equal(read, pixels)
    read[0, 0, 0] = 7  # writable, so torch.from_numpy shares it without a warning or a copy


def test_labels_file(tmp_path):
    (tmp_path / "labels").write_bytes(struct.pack(">II", 0x801, 4) + bytes([3, 1, 4, 1]))
    assert read_idx(tmp_path / "labels", LABELS_MAGIC).tolist() == [3, 1, 4, 1]


def test_truncated_file_is_refused_with_sizes(tmp_path):
    pixels = np.zeros((2, 28, 28), dtype=np.uint8)
    _images_file(tmp_path / "images", pixels)
    data = (tmp_path / "images").read_bytes()
    (tmp_path / "images").write_bytes(data[:-1])
    with pytest.raises(IdxError, match=f"{len(data) - 1} bytes"):
        read_idx(tmp_path / "images", IMAGES_MAGIC)
    (tmp_path / "images").write_bytes(data[:10])  # cut inside the header
    with pytest.raises(IdxError, match="header"):
        read_idx(tmp_path / "images", IMAGES_MAGIC)


def test_trailing_bytes_are_refused(tmp_path):
    (tmp_path / "labels").write_bytes(struct.pack(">II", 0x801, 2) + bytes([1, 2, 3]))
    with pytest.raises(IdxError):
        read_idx(tmp_path / "labels", LABELS_MAGIC)


def test_wrong_magic_number_is_refused(tmp_path):
    # A labels file where images are expected: right sizes for its own header, wrong kind.
    (tmp_path / "labels").write_bytes(struct.pack(">II", 0x801, 2) + bytes([1, 2]))
    with pytest.raises(IdxError, match="magic number 0x00000801"):
        read_idx(tmp_path / "labels", IMAGES_MAGIC)


def test_wrong_magic_in_a_split_is_a_clear_dataset_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", *synthetic_digits(10, seed=0))
    write_idx(raw, "test", *synthetic_digits(10, seed=0))
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(struct.pack(">I", 0x0D03) + images.read_bytes()[4:])  # 0x0D: floats, not bytes
    with pytest.raises(DatasetError, match="corrupt or truncated") as info:
        load_split("test", tmp_path)
    assert "t10k-images-idx3-ubyte" in str(info.value) and "Delete them" in str(info.value)


def test_truncated_labels_in_a_split_is_a_clear_dataset_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", *synthetic_digits(10, seed=0))
    write_idx(raw, "test", *synthetic_digits(10, seed=0))
    labels = raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        load_split("test", tmp_path)


def test_labels_above_nine_are_refused(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    images, labels = synthetic_digits(10, seed=0)
    labels[3] = 12
    write_idx(raw, "train", images, labels)
    write_idx(raw, "test", images, labels)
    with pytest.raises(DatasetError, match="above 9"):
        load_split("train", tmp_path)


def test_split_from_the_direct_reader_matches_torchvision(tiny_data):
    from torchvision.datasets import MNIST

    split = load_split("test", tiny_data)
    reference = MNIST(str(tiny_data), train=False, download=False)
    assert torch.equal(split.raw(), reference.data) and torch.equal(split.labels, reference.targets.long())


@pytest.mark.integration  # a fresh interpreter, to see what loading imports
def test_loading_present_files_does_not_import_torchvision(tiny_data):
    code = (
        "import sys; from mnist_core.data import load_split; "
        f"load_split('train', {str(tiny_data)!r}); load_split('test', {str(tiny_data)!r}); "
        "print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
