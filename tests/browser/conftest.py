"""Browser fixtures: a real `streamlit run` on a free port, driven by Playwright in Debian's Chromium.

Every test here is marked `browser`. The server runs with a fresh runs folder and the
real MNIST (CI has it; locally the tests skip when it is absent, like other real-data tests).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnist_core.testing.server import CHROMIUM_ARGS, start_server, stop_server
from tests.conftest import REPO

SCREENSHOTS = REPO / "test-output" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory, real_data) -> Iterator[tuple[str, Path]]:
    """A running app on the real MNIST with an empty runs folder: (base URL, runs folder)."""
    tmp = tmp_path_factory.mktemp("server")
    url, process, runs_dir = start_server(tmp, real_data)
    yield url, runs_dir
    stop_server(process, runs_dir)


@pytest.fixture(scope="module")
def app_url(app_server) -> str:
    """The base URL of the running app."""
    return app_server[0]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (Playwright's own browser download cannot work here)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.fail("Chromium is not installed: `apt-get install chromium` (.ci/run does this).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context and page, 1400x1000."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def wait_for_app(page, timeout_ms: int = 30_000) -> None:
    """Wait until the app is connected and its script has finished running."""
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=timeout_ms)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def assert_no_exception(page) -> None:
    """No Streamlit exception box on the page."""
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG under test-output/screenshots/ (look at them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
