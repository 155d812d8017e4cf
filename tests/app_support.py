"""Helpers for the AppTest page tests: the app under test, and finished runs made with the real CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from mnist_core.cli import main as cli_main
from mnist_core.runs import Run, RunStore
from tests.conftest import REPO

APP = REPO / "streamlit_app.py"


class _PagesManagerAsOnAServer(PagesManager):
    """AppTest sets `PagesManager.uses_pages_directory = None` before every run, so each run starts in Streamlit's
    first multipage mode and a switched-to page ran without the entry script. A server never resets it: after its
    first `st.navigation` every run goes through the entry script. With this class in AppTest's module, its reset
    lands here and runs behave as on a server (ui/entry.py covers a server's very first run)."""


app_test_module.PagesManager = _PagesManagerAsOnAServer


def app(page: str | None = None, timeout: float = 60) -> AppTest:
    """The whole app (entry script, sidebar, navigation), run once, on `page` if given."""
    at = AppTest.from_file(str(APP), default_timeout=timeout).run()
    if page is not None:
        at.switch_page(page).run()
    return at


def train_tiny(data_dir: Path, name: str, epochs: int = 2) -> Run:
    """A finished run on the tiny data, trained in this process by the same CLI the app launches."""
    assert (
        cli_main(
            ["train", "--data-dir", str(data_dir), "--preset", "fast", "--epochs", str(epochs), "--device", "cpu", "--name", name]
        )
        == 0
    )
    (run,) = [run for run in RunStore().list() if run.name == name]
    return run


def wait_until_done(run: Run, timeout_s: float = 180) -> dict:
    """Poll the run store until the run leaves queued/running; returns its progress."""
    deadline = time.monotonic() + timeout_s
    while run.is_active():
        if time.monotonic() > deadline:
            raise AssertionError(f"{run.id} still {run.status()} after {timeout_s}s; log: {run.log_tail(5)}")
        time.sleep(0.5)
    return run.progress()


def plotly_figures(at: AppTest) -> list[dict]:
    """The Plotly figures on the page, as the JSON the browser receives."""
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def texts(elements) -> str:
    """All values of a list of AppTest elements, joined, for `in` checks."""
    return "\n".join(str(element.value) for element in elements)
