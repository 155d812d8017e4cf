"""Shared fixtures: tiny IDX datasets written by the tests, and the real MNIST when it is present."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("MNIST_REAL_DATA", REPO.parent / "shared" / "datasets"))
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images (N, 28, 28) uint8 and labels (N,) in the IDX format torchvision reads."""
    folder.mkdir(parents=True, exist_ok=True)
    image_name, label_name = IDX_NAMES[split]
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


def kill_trainers(runs_dir: Path | None = None) -> None:
    """Kill every trainer still running in a runs folder, so that no test leaves one behind."""
    import psutil

    from mnist_core.runs import RunStore

    for run in RunStore(runs_dir).active():
        pid = run.progress().get("pid")
        if pid:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A data folder with 600 train and 200 test synthetic images in torchvision's layout."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    write_idx(raw, "train", *synthetic_digits(600, seed=1))
    write_idx(raw, "test", *synthetic_digits(200, seed=2))
    return tmp_path / "data"


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty runs folder, also set as $MNIST_LAB_RUNS_DIR."""
    path = tmp_path / "runs"
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real MNIST in ../shared/datasets; CI has it, so there this never skips."""
    if not (REAL_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real MNIST at {REAL_DATA}")
        pytest.skip(f"real MNIST not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _openmp_setting_stays_in_its_test(monkeypatch):
    """The entry script sets OMP_NUM_THREADS for the server's process, and AppTest runs it in this one: each test
    gets the variable back as it found it, so processes started by later tests do not inherit the app's value."""
    original = os.environ.get("OMP_NUM_THREADS")
    if original is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", original)
