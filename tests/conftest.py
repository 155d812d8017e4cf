"""Shared fixtures: tiny IDX datasets written by the tests, and the real MNIST when it is present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnist_core.testing import synthetic_digits, write_idx

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("MNIST_REAL_DATA", REPO.parent / "shared" / "datasets"))


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


@pytest.fixture(autouse=True)
def _no_background_maps(monkeypatch):
    """Explore would start a t-SNE process for every model and split without a stored map; page tests do not need
    one, so they run with it off. tests/test_background_maps.py turns it on to test it."""
    monkeypatch.setenv("MNIST_LAB_BACKGROUND_MAPS", "0")
