"""The dashboard in a real headless Chromium: every page loads, and a training run started by clicking shows
moving progress and live curves, survives a reload, stops from its button and keeps its charts.

Each test has the server it needs (empty, or with a trained run), so they pass in any order. The clicked run
asks for far more epochs than the test watches and is stopped once everything was seen, so no machine is
too fast for the test to see it training.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from mnist_core.runs import RunStore
from mnist_core.testing.server import start_server, stop_server
from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app

# Enough that an epoch's batches, not the evaluation on the 10,000 test images that ends it, take most of its time:
# the bars are then caught mid-epoch whatever the machine's speed (with 2,000, a fast trainer spent most of each
# epoch evaluating, and the page kept finding the batch bar full).
TRAIN_IMAGES = 20000
EPOCHS = 100  # never reached: the test stops the run once it has seen it train
BATCH = 32
RUN_TIMEOUT_S = 600  # a bound for a stuck run, not a pace: on a shared 2-core machine the first epochs took minutes
PAGES = ["Home", "Train", "Runs", "Explore errors", "Draw", "Robustness"]


@pytest.fixture
def fresh_server(tmp_path, real_data) -> Iterator[tuple[str, object]]:
    """An app with an empty runs folder, for this test alone: (base URL, runs folder)."""
    url, process, runs_dir = start_server(tmp_path, real_data)
    yield url, runs_dir
    stop_server(process, runs_dir)


@pytest.fixture(scope="module")
def trained_server(tmp_path_factory, real_data) -> Iterator[tuple[str, object]]:
    """An app whose runs folder holds one finished run (1 epoch on 2,000 images, trained by the CLI)."""
    tmp = tmp_path_factory.mktemp("trained")
    env = {**os.environ, "MNIST_LAB_RUNS_DIR": str(tmp / "runs")}
    command = [sys.executable, "-m", "mnist_core", "train", "--data-dir", str(real_data), "--preset", "fast",
               "--epochs", "1", "--train-subset", "2000", "--device", "cpu", "--name", "trained"]  # fmt: skip
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=900)
    url, process, runs_dir = start_server(tmp, real_data)
    yield url, runs_dir
    stop_server(process, runs_dir)


def _open(page, url: str) -> None:
    page.goto(url)
    wait_for_app(page)
    # Widgets render after their code chunk loads; a page is ready when no skeleton is left.
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=30_000)


def _screenshot(page, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main section, so grow the viewport to fit it."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 6000))})
    page.wait_for_timeout(300)
    screenshot(page, name)
    page.set_viewport_size({"width": 1400, "height": 1000})


def _navigation(page, app_url: str) -> list[tuple[str, str]]:
    _open(page, app_url)
    links = page.locator('[data-testid="stSidebarNav"] a')
    return [(link.inner_text().splitlines()[-1].strip(), link.get_attribute("href")) for link in links.all()]


def _visit_every_page(page, app_url: str, label: str) -> list[str]:
    pages = _navigation(page, app_url)
    assert [title for title, _ in pages] == PAGES
    for title, href in pages:
        _open(page, href)
        page.wait_for_timeout(500)  # late elements (charts, components) get a moment to fail visibly
        assert_no_exception(page)
        assert page.locator("h1").count() >= 1, f"{title} shows no title"
        _screenshot(page, f"{label}-{title.lower().replace(' ', '-')}")
    return [title for title, _ in pages]


def test_every_page_loads_without_an_exception_before_any_run(page, fresh_server):
    _visit_every_page(page, fresh_server[0], "empty")


def _bar_values(page) -> list[float]:
    # Read in one step in the page: the live fragment replaces the bars every second.
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stProgress"] [role="progressbar"]')]
                 .map(bar => Number(bar.getAttribute("aria-valuenow") || 0))"""
    )


def test_a_run_started_by_clicking_shows_progress_and_live_curves_and_stops_with_its_charts(page, fresh_server):
    app_url, runs_dir = fresh_server
    _open(page, f"{app_url}/train")
    # The training form, not the label audit's form below it (it has fields of the same names).
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Start training"))
    for label, value in (("Epochs", EPOCHS), ("Batch size", BATCH), ("Training images", TRAIN_IMAGES), ("Device", None)):
        if value is not None:
            field = form.get_by_label(label, exact=True)
            field.fill(str(value))
            field.press("Tab")
    screenshot(page, "train-form-filled")
    page.get_by_role("button", name="Start training").click()

    page.wait_for_selector('[data-testid="stProgress"]', timeout=30_000)
    (run,) = RunStore(runs_dir).list()
    assert run.config().train_subset == TRAIN_IMAGES and run.config().epochs == EPOCHS

    seen: list[tuple[float, float]] = []
    reloaded = live_chart = False
    deadline = time.monotonic() + RUN_TIMEOUT_S
    # Watch until the page has shown everything a training run shows (moving bars, the live curves, a reload)
    # and the run has finished an epoch, so that the stopped run has test figures to show.
    while not (reloaded and live_chart and len({inner for _, inner in seen}) >= 3 and run.metrics()):
        assert time.monotonic() < deadline, f"not seen training after {RUN_TIMEOUT_S}s: {run.progress()}"
        assert run.is_active(), f"the run ended before the test saw it train: {run.progress()}"
        assert_no_exception(page)
        values = _bar_values(page)
        if len(values) == 2:
            seen.append((values[0], values[1]))
            if page.locator('[data-testid="stPlotlyChart"]').count() and not live_chart:
                live_chart = True
                _screenshot(page, "train-running-with-curves")
            if not reloaded and values[1] > 0:
                screenshot(page, "train-running")
                # A reload mid-run must find the same run, not lose it or start another.
                page.reload()
                wait_for_app(page)
                page.wait_for_selector('[data-testid="stProgress"], [data-testid="stAlertContentSuccess"]', timeout=30_000)
                page.get_by_text(run.id).first.wait_for(state="visible", timeout=30_000)
                assert len(RunStore(runs_dir).list()) == 1
                reloaded = True
        page.wait_for_timeout(250)

    overall = [first for first, _ in seen]
    assert overall == sorted(overall), f"the overall bar went backwards: {overall}"
    # The live panel is redrawn every second, so a click can land on a button that is being replaced: click until
    # the run store has the request.
    while not run.stop_requested():
        assert time.monotonic() < deadline, "the Stop button never reached the run"
        page.get_by_role("button", name="Stop").click()
        page.wait_for_timeout(500)
    page.get_by_text("Stopped after").wait_for(state="visible", timeout=RUN_TIMEOUT_S * 1000)
    assert run.progress()["status"] == "stopped" and run.metrics(), run.progress()

    page.get_by_text("Explore its errors").wait_for(state="visible", timeout=30_000)
    wait_for_app(page)
    page.wait_for_timeout(1000)  # let Plotly draw before the screenshot
    # live step curves (loss, accuracy), per-epoch curves (loss, accuracy) and per-digit accuracy
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 5
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 4  # train and test, loss and accuracy
    assert_no_exception(page)
    _screenshot(page, "train-stopped")
    # The new model is offered by the shared picker in the sidebar.
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').click()
    options = page.get_by_role("option")
    options.first.wait_for()
    name = run.id.split("-", 2)[2]  # the picker names a run by its name first (ids are YYYYMMDD-HHMMSS-name)
    assert any(option.startswith(f"{name} · ") for option in options.all_inner_texts()), options.all_inner_texts()
    page.keyboard.press("Escape")


def test_the_runs_page_lists_the_run_and_draws_its_curves(page, trained_server):
    app_url, runs_dir = trained_server
    (run,) = RunStore(runs_dir).list()
    _open(page, f"{app_url}/runs")
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2, timeout=60_000)  # the overlay and the heatmap
    expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(1, timeout=60_000)
    assert_no_exception(page)
    # The table is a canvas; the overlay's chosen runs are text.
    expect(page.locator('[data-testid="stMultiSelect"]').get_by_text(f"{run.id} (finished)")).to_be_visible(timeout=60_000)
    _screenshot(page, "runs")


def test_every_page_loads_without_an_exception_with_a_trained_model(page, trained_server):
    _visit_every_page(page, trained_server[0], "with-model")
