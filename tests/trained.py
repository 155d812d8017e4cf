"""A small model really trained on the synthetic digits, shared by the explorer's tests (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_core.checkpoint import build_meta, save_checkpoint
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.testing import synthetic_digits, write_idx
from mnist_core.train import train

# Test labels flipped on purpose (index -> wrong label); the images stay those of the true class.
FLIPPED = {i: int((synthetic_digits(200, seed=2)[1][i] + 1 + i % 9) % 10) for i in (3, 17, 42, 101, 150)}


def make_data(folder: Path, flipped: dict[int, int] | None = None) -> Path:
    """A data folder with 600 train and 200 test synthetic digits; `flipped` test labels replaced."""
    raw = folder / "MNIST" / "raw"
    write_idx(raw, "train", *synthetic_digits(600, seed=1))
    images, labels = synthetic_digits(200, seed=2)
    labels = labels.copy()
    for index, wrong in (flipped or {}).items():
        assert labels[index] != wrong, "a flip must change the label"
        labels[index] = wrong
    write_idx(raw, "test", images, labels)
    return folder


def true_test_labels() -> np.ndarray:
    """The unflipped labels of the synthetic test split."""
    return synthetic_digits(200, seed=2)[1]


def train_checkpoint(data_dir: Path, path: Path) -> Path:
    """Train 3 epochs on the synthetic train split and save an MNIST Lab checkpoint at `path`."""
    config = TrainConfig(epochs=3, batch_size=32, lr=3e-3, device="cpu", threads=1)
    result = train(config, load_split("train", data_dir), load_split("test", data_dir))
    return save_checkpoint(path, result.model, build_meta(config=config.to_dict()))
