"""Helpers shared by the test suite and the benchmarks: tiny MNIST files in the real format, and trainer clean-up.

They live in the package (as numpy.testing does) so that tests/ and bench/ both import
them without either importing the other or touching sys.path.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from mnist_core.data import RAW_FILES


def write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images (N, 28, 28) uint8 and labels (N,) as the two IDX files torchvision reads for `split`."""
    folder.mkdir(parents=True, exist_ok=True)
    image_name, label_name = RAW_FILES[split]
    n = len(labels)
    (folder / image_name).write_bytes(struct.pack(">IIII", 0x00000803, n, 28, 28) + images.astype(np.uint8).tobytes())
    (folder / label_name).write_bytes(struct.pack(">II", 0x00000801, n) + labels.astype(np.uint8).tobytes())


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k is a bright bar at a class-specific position, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        row = 3 + 2 * int(label)
        images[i, row : row + 2, 4:24] = 255
    return images, labels


def write_synthetic_mnist(data_dir: Path, train: int = 600, test: int = 200) -> Path:
    """A data folder (torchvision's layout) of synthetic digits: `train` and `test` images, seeds 1 and 2."""
    raw = data_dir / "MNIST" / "raw"
    write_idx(raw, "train", *synthetic_digits(train, seed=1))
    write_idx(raw, "test", *synthetic_digits(test, seed=2))
    return data_dir


def kill_trainers(runs_dir: Path | None = None) -> None:
    """Kill every trainer still running in a runs folder, so that no test or benchmark leaves one behind."""
    import psutil

    from mnist_core.runs import RunStore

    for run in RunStore(runs_dir).active():
        pid = run.progress().get("pid")
        if pid:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
