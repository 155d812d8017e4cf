"""A local app server with a small model of its own, for the hosting and upload browser tests.

These tests are about how the server treats visitors, not about accuracy, so the model
is one quick epoch on synthetic digits and they do not wait for the bundled model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_core.testing.server import start_server, stop_server
from tests.browser.conftest import wait_for_app
from tests.conftest import synthetic_digits, write_idx


@contextmanager
def server_with_model(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, int, Path]]:
    """Start the app on tiny synthetic data with one trained run in its runs folder; yields (url, server pid, runs dir)."""
    data = tmp / "data"
    write_idx(data / "MNIST" / "raw", "train", *synthetic_digits(600, seed=1))
    write_idx(data / "MNIST" / "raw", "test", *synthetic_digits(200, seed=2))
    env = {**os.environ, "MNIST_LAB_RUNS_DIR": str(tmp / "runs")}
    subprocess.run(
        [sys.executable, "-m", "mnist_core", "train", "--data-dir", str(data), "--preset", "fast", "--epochs", "1",
         "--device", "cpu", "--name", "tiny-model"],
        env=env, check=True, stdout=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    url, process, runs_dir = start_server(tmp, data, extra_env)
    try:
        yield url, process.pid, runs_dir
    finally:
        stop_server(process, runs_dir)


def open_page(page, url: str, name: str) -> None:
    """Open the app and go to the page called `name` through the sidebar, as a visitor does."""
    page.goto(url)
    wait_for_app(page)
    if name != "Home":
        page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=name, exact=True).click()
        wait_for_app(page)
