"""A real `streamlit run streamlit_app.py` on a free local port, for browser tests and benchmarks.

It waits for the server's health endpoint, never for a fixed time, so it works on
fast and slow machines alike.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mnist_core.testing import kill_trainers

# The app's folder: the checkout this package was imported from (the app is not part of the installed package).
APP_DIR = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
STARTUP_TIMEOUT_S = 120


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not become healthy in {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def start_server(
    tmp: Path, data_dir: Path, extra_env: dict[str, str] | None = None, module: str = "streamlit"
) -> tuple[str, subprocess.Popen, Path]:
    """Start the app headless on a free port with a fresh runs folder under `tmp`; returns (url, process, runs_dir).

    `module` is what `python -m` runs: Streamlit's own entry point, or a wrapper with its command line (the
    benchmarks' clocked server, bench/timed_server.py).
    """
    port = free_port()
    runs_dir = tmp / "runs"
    log = tmp / "streamlit.log"
    env = {
        **os.environ,
        "MNIST_DATA_DIR": str(data_dir),
        "MNIST_LAB_RUNS_DIR": str(runs_dir),
        "MNIST_LAB_CACHE_DIR": str(tmp / "cache"),
        **(extra_env or {}),
    }
    command = [
        sys.executable, "-m", module, "run", "streamlit_app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, cwd=APP_DIR, env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
    except BaseException:
        stop_server(process, runs_dir)
        raise
    return url, process, runs_dir


def stop_server(process: subprocess.Popen, runs_dir: Path) -> None:
    """Stop the server, and any trainer it started (trainers run in their own session on purpose)."""
    kill_trainers(runs_dir)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
