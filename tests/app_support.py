"""Helpers for the AppTest page tests: the app under test, and finished runs made with the real CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from mnist_core.cli import main as cli_main
from mnist_core.runs import Run, RunStore
from tests.conftest import REPO
from ui import charts

APP = REPO / "streamlit_app.py"


class _PagesManagerAsOnAServer(PagesManager):
    """AppTest sets `PagesManager.uses_pages_directory = None` before every run, so each run starts in Streamlit's
    first multipage mode and a switched-to page ran without the entry script. A server never resets it: after its
    first `st.navigation` every run goes through the entry script. With this class in AppTest's module, its reset
    lands here and runs behave as on a server (ui/entry.py covers a server's very first run)."""


app_test_module.PagesManager = _PagesManagerAsOnAServer


def app(page: str | None = None, timeout: float = 60, first_drawing: bool = False) -> AppTest:
    """The whole app (entry script, sidebar, navigation), run once, on `page` if given.

    Its charts are interactive, as after the session's first drawing (ui/charts.py), unless `first_drawing`: that
    drawing shows stills, and a quick enough second run would turn them into charts at a moment AppTest cannot fix."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if not first_drawing:
        at.session_state[charts.INTERACTIVE] = True
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


_TRAINED: dict[tuple[str, int], Path] = {}


def train_tiny(data_dir: Path, name: str, epochs: int = 2) -> Run:
    """A finished run on the tiny data, trained in this process by the same CLI the app launches.

    Each (data, epochs) pair is trained once per test session and its files copied into a new run of the
    current store: the tiny data are the same bytes in every test, so the copy is exactly what training gives.
    """
    key = (_digest(data_dir), epochs)
    if key not in _TRAINED or not _TRAINED[key].is_dir():
        template = Path(tempfile.mkdtemp(prefix="mnist-lab-trained-")) / "run"
        command = ["train", "--data-dir", str(data_dir), "--preset", "fast", "--epochs", str(epochs), "--device", "cpu"]
        assert cli_main([*command, "--out", str(template)]) == 0
        _TRAINED[key] = template
    run = RunStore().create(Run(_TRAINED[key]).config(), name)
    shutil.copytree(_TRAINED[key], run.path, dirs_exist_ok=True)  # its files and its train/ outputs
    return run


@dataclass(frozen=True)
class TrainedRun:
    """Tiny data and one finished run trained on them: what the Explore-page tests open."""

    data_dir: Path
    runs_dir: Path
    run: Run


def trained_run(folder: Path, name: str, epochs: int, flipped: dict[int, int] | None = None) -> TrainedRun:
    """Tiny data under `folder` (test labels in `flipped` replaced) and a run `name` of `epochs` trained on them."""
    from tests.trained import make_data

    data_dir = make_data(folder / "data", flipped=flipped)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_LAB_RUNS_DIR", str(folder / "runs"))
        run = train_tiny(data_dir, name, epochs=epochs)
    return TrainedRun(data_dir, folder / "runs", run)


def serve(monkeypatch: pytest.MonkeyPatch, data_dir: Path, runs_dir: Path, cache_dir: Path, bundled: bool = True) -> None:
    """Point the app at these data, runs and a private analysis cache, with or without the bundled model;
    forget the analyses earlier tests left in memory (call `analysis.clear_memory()` again after the test)."""
    from mnist_core import analysis

    if not bundled:
        monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: False)
    monkeypatch.setenv("MNIST_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(cache_dir))
    analysis.clear_memory()


def _digest(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((data_dir / "MNIST" / "raw").iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def wait_until_done(run: Run, timeout_s: float = 180) -> dict:
    """Poll the run store until the run leaves queued/running; returns its progress."""
    deadline = time.monotonic() + timeout_s
    while run.is_active():
        if time.monotonic() > deadline:
            raise AssertionError(f"{run.id} still {run.status()} after {timeout_s}s; log: {run.log_tail(5)}")
        time.sleep(0.5)
    return run.progress()


def stills(at: AppTest) -> list[str]:
    """The keys of the charts drawn as stills (ui/charts.py), in page order."""
    found = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            block_id = str(getattr(getattr(child, "proto", None), "id", ""))
            if block_id.endswith("_still") and any(type(c).__name__ == "Image" for c in child.children.values()):
                found.append(block_id.split("-", 2)[2].removesuffix("_still"))
            walk(child)

    walk(at.main)
    return found


def plotly_figures(at: AppTest) -> list[dict]:
    """The Plotly figures on the page, as the JSON the browser receives."""
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def plotly_values(array) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(array, dict):
        values = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        return values.reshape([int(s) for s in str(array.get("shape", len(values))).split(",")])
    return np.asarray(array)


def texts(elements) -> str:
    """All values of a list of AppTest elements, joined, for `in` checks."""
    return "\n".join(str(element.value) for element in elements)
