"""The Draw page under AppTest: what it shows before anything is drawn, with and without a model.

AppTest cannot draw on the canvas or upload a file; tests/browser/test_draw.py does that
in Chromium, and tests/test_preprocess.py covers every image the page can receive.
"""

from __future__ import annotations

import pytest
import torch

from mnist_core.checkpoint import build_meta, save_checkpoint
from mnist_core.model import MnistCNN
from mnist_core.preprocess import UPLOAD_TYPES
from tests.app_support import app, texts

PAGE = "pages/draw.py"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, runs_dir):
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: False)


@pytest.fixture
def bundled(monkeypatch, tmp_path):
    """An (untrained) checkpoint standing in as the bundled model."""
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "bundled.pt", MnistCNN(), build_meta())
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: True)
    monkeypatch.setattr("mnist_core.catalog.PRETRAINED_PATH", path)
    return path


def test_without_any_model_the_page_says_so():
    at = app(PAGE)
    assert not at.exception
    assert at.title[0].value == "Draw a digit"
    assert "There is no model yet" in texts(at.info)
    assert not at.get("bidi_component")


def test_with_a_model_the_canvas_waits_for_a_drawing(bundled):
    at = app(PAGE)
    assert not at.exception
    assert len(at.get("bidi_component")) == 1
    assert "Draw a digit on the canvas" in texts(at.info)
    assert at.slider(key="draw_brush").value == 20
    assert not at.get("plotly_chart") and not at.success and not at.warning


def test_clear_gives_a_fresh_canvas(bundled):
    at = app(PAGE)
    assert at.session_state["draw_canvas_version"] == 0
    at.button(key="draw_clear").click().run()
    assert not at.exception
    assert at.session_state["draw_canvas_version"] == 1
    assert "Draw a digit on the canvas" in texts(at.info)


def test_upload_mode_offers_the_uploader_for_image_types(bundled):
    at = app(PAGE)
    at.button_group(key="draw_source").set_value("Upload").run()
    assert not at.exception
    assert not at.get("bidi_component")
    (uploader,) = at.get("file_uploader")
    assert set(uploader.proto.type) == {f".{extension}" for extension in UPLOAD_TYPES}
