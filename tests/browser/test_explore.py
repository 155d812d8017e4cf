"""Explore page in a real browser: click a confusion-matrix cell, the gallery shows exactly its samples; open one."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from playwright.sync_api import expect

from mnist_core.analysis import analyze
from mnist_core.catalog import available_models
from mnist_core.checkpoint import load_checkpoint
from mnist_core.data import load_split
from mnist_core.runs import RunStore
from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app
from tests.conftest import REPO
from ui.explorer import CONFUSION_CELL_WIDTH, CONFUSION_INDEX_WIDTH, CONFUSION_ROW_HEIGHT

# The neighbour bank (60,000 training images through the model) may still be computing on a busy 2-core machine.
SLOW_MS = 240_000


@pytest.fixture(scope="module")
def explored(app_server, real_data):
    """The model the page shows by default (trained here on 2,000 images if no bundled model ships) and its test analysis."""
    _, runs_dir = app_server
    store = RunStore(runs_dir)
    if not available_models(store):
        env = {**os.environ, "MNIST_LAB_RUNS_DIR": str(runs_dir)}
        command = [sys.executable, "-m", "mnist_core", "train", "--data-dir", str(real_data), "--preset", "fast",
                   "--epochs", "1", "--train-subset", "2000", "--device", "cpu", "--name", "explore"]  # fmt: skip
        subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True, timeout=600)
    source = available_models(store)[0]
    return analyze(load_checkpoint(source.path), load_split("test", real_data), use_disk=False)


def open_explore(page, app_url: str) -> None:
    """Open the app and go to Explore errors through the navigation, as a visitor does."""
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Explore errors", exact=True).click()
    page.get_by_text("Select a cell to show exactly its samples").wait_for(timeout=SLOW_MS)
    wait_for_app(page, SLOW_MS)


def click_cell(page, true: int, predicted: int) -> None:
    """Click confusion cell (true, predicted): the grid is drawn on a canvas, so by position (fixed sizes in ui.explore)."""
    grid = page.locator('[data-testid="stDataFrame"]:visible').last
    box = grid.bounding_box()
    header = page.locator('[data-testid="stDataFrame"]:visible canvas').last.bounding_box()["height"]
    x = box["x"] + 1 + CONFUSION_INDEX_WIDTH + predicted * CONFUSION_CELL_WIDTH + CONFUSION_CELL_WIDTH / 2
    y = box["y"] + 1 + header + true * CONFUSION_ROW_HEIGHT + CONFUSION_ROW_HEIGHT / 2
    page.mouse.click(x, y)


def tile_indices(page) -> list[int]:
    labels = page.get_by_role("button", name=re.compile(r"^#\d+$")).all_inner_texts()
    return [int(label.strip()[1:]) for label in labels]


def test_selecting_a_confusion_cell_shows_exactly_its_samples(page, app_url, explored):
    result = explored
    off_diagonal = result.evaluation.confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    true, predicted = (int(v) for v in np.unravel_index(off_diagonal.argmax(), off_diagonal.shape))
    expected = np.flatnonzero((result.labels == true) & (result.predictions == predicted))
    assert len(expected) > 0

    open_explore(page, app_url)
    assert_no_exception(page)
    errors = int((result.predictions != result.labels).sum())
    page.get_by_text(f"{errors:,} samples match.").wait_for()

    click_cell(page, true, predicted)
    count = f"{len(expected)} sample matches." if len(expected) == 1 else f"{len(expected):,} samples match."
    page.get_by_text(count).wait_for(timeout=SLOW_MS)
    wait_for_app(page, SLOW_MS)
    # The unfiltered gallery's tiles stay on the page, stale, until the rerun has replaced or removed them all.
    expect(page.get_by_role("button", name=re.compile(r"^#\d+$"))).to_have_count(min(len(expected), 24), timeout=SLOW_MS)
    assert_no_exception(page)
    shown = tile_indices(page)
    assert set(shown) <= set(expected.tolist())
    assert len(shown) == min(len(expected), 24)
    captions = page.get_by_test_id("stImageCaption").all_inner_texts()
    assert captions and all(caption.startswith(f"{true} → {predicted} (") for caption in captions)
    page.get_by_text(count).scroll_into_view_if_needed()
    screenshot(page, "explore_confusion_cell")

    first = shown[0]
    page.get_by_role("button", name=f"#{first}", exact=True).click()
    page.get_by_text(f"Sample #{first} of the test split").wait_for(timeout=SLOW_MS)
    page.get_by_text(f"Labelled {true} (given class)").wait_for(timeout=SLOW_MS)
    wait_for_app(page, SLOW_MS)
    assert_no_exception(page)
    page.get_by_text(f"Sample #{first} of the test split").scroll_into_view_if_needed()
    screenshot(page, "explore_sample_detail")
    page.get_by_text(f"Labelled {true} (given class)").scroll_into_view_if_needed()
    screenshot(page, "explore_sample_saliency_neighbours")
