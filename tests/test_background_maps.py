"""Maps computed in the background: where nothing was precomputed, Explore shows PCA at once and a child process
computes the better map into the cache (mnist_core.launch.start_map); the page picks it up when it is there."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from mnist_core import analysis, launch, maps
from mnist_core.data import load_split
from mnist_core.pretrained import PRETRAINED_PATH, load_pretrained
from tests.app_support import app, plotly_figures, plotly_values, texts

pytestmark = pytest.mark.integration  # each test starts `python -m mnist_core analyze` processes

PAGE = "pages/explore.py"


@pytest.fixture
def background(tiny_data, tmp_path, monkeypatch) -> Path:
    """Background maps on, the tiny data as the server's, an empty cache; returns the data folder."""
    monkeypatch.setenv("MNIST_LAB_BACKGROUND_MAPS", "1")
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path / "cache"))
    analysis.clear_memory()
    yield tiny_data
    analysis.clear_memory()


def wait_for(condition, timeout_s: float = 240) -> None:
    """Poll until `condition()` holds; a child process on a busy 2-core machine may take a while to start."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {timeout_s} s"
        time.sleep(0.3)


def test_one_map_process_at_a_time_and_its_map_lands_in_the_folder(background, tmp_path):
    first, second = tmp_path / "maps" / "first", tmp_path / "maps" / "second"
    assert launch.start_map(PRETRAINED_PATH, "test", first) == "computing"
    assert launch.start_map(PRETRAINED_PATH, "test", first) == "computing"  # the same map: not started twice
    assert launch.start_map(PRETRAINED_PATH, "train", second) == "waiting"  # another map: after this one
    wait_for(lambda: maps.stored_map(first, "test", 200) is not None)
    points, method = maps.stored_map(first, "test", 200)
    assert points.shape == (200, 2) and method == maps.PCA  # below t-SNE's 1,000 points the child makes PCA
    wait_for(lambda: launch.start_map(PRETRAINED_PATH, "train", second) == "computing")  # the first has ended
    wait_for(lambda: maps.stored_map(second, "train", 600) is not None)
    assert maps.stored_map(second, "test", 600) is None  # a map is for the split it was made of


def test_a_failed_map_says_why_and_is_not_tried_again(background, tmp_path):
    foreign = tmp_path / "not-a-model.pt"
    foreign.write_bytes(b"these bytes are no checkpoint")
    out = tmp_path / "maps" / "broken"
    assert launch.start_map(foreign, "test", out) == "computing"
    wait_for(lambda: launch.map_error(out) is not None)
    assert "checkpoint" in launch.map_error(out).lower()
    assert launch.start_map(foreign, "test", out) == "failed"
    assert maps.stored_map(out, "test", 200) is None


def test_off_starts_nothing(background, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_BACKGROUND_MAPS", "0")
    out = tmp_path / "maps" / "never"
    assert launch.start_map(PRETRAINED_PATH, "test", out) == "off"
    assert not out.exists()


def test_explore_shows_pca_at_once_then_the_map_computed_in_the_background(background):
    # The bundled model ships a map of the real test split only: on these data Explore has none to show.
    at = app(PAGE)
    assert not at.exception
    assert "PCA for now: a t-SNE map of this model and split is being computed in the background" in texts(at.caption)
    test_split = load_split("test", background)
    result = analysis.analyze(load_pretrained(), test_split)
    folder = maps.map_folder(result.digest, "test", result.data_checksum)
    wait_for(lambda: maps.stored_map(folder, "test", len(result)) is not None)
    stored, _ = maps.stored_map(folder, "test", len(result))
    stored[:, 0] += 1000.0  # recognisable coordinates: the page must draw these, not compute a map of its own
    np.save(folder / maps.MAP_FILE, stored)
    at.run()
    assert not at.exception
    assert "PCA for now" not in texts(at.caption) and "PCA of the penultimate layer" in texts(at.caption)
    (feature_map,) = [f for f in plotly_figures(at) if f["layout"]["xaxis"]["title"]["text"] == "component 1"]
    digit = feature_map["data"][0]  # the points of true digit 0
    shown = plotly_values(digit["customdata"]).reshape(-1, 2)[:, 0].astype(int)
    assert set(test_split.labels[shown].tolist()) == {0}
    assert plotly_values(digit["x"]).tolist() == stored[shown, 0].tolist()
