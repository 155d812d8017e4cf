"""The Home page and the app frame (navigation, shared sidebar), driven by AppTest."""

from __future__ import annotations

import json
import os

import pytest

from tests.app_support import app, plotly_figures, texts, train_tiny


@pytest.fixture(autouse=True)
def _no_bundled_model(monkeypatch, runs_dir):
    # Each test decides whether a bundled model exists; the real one must not leak in.
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: False)


def test_home_with_the_dataset_shows_where_it_is_and_sample_digits(tiny_data, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    at = app()
    assert not at.exception
    assert at.title[0].value == "MNIST Lab"
    assert f"MNIST found in `{tiny_data.resolve()}` (200 test images)" in texts(at.success)
    (image,) = at.image
    assert image.captions[0].startswith("The first twelve test images of each digit")
    assert "Download MNIST" not in [button.label for button in at.button]
    assert f"MNIST from `{tiny_data.resolve()}`" in texts(at.sidebar.caption)
    assert "No model yet" in texts(at.sidebar.info) and "No model yet" in texts(at.info)


def test_home_without_the_dataset_says_what_to_do(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MNIST_DATA_DIR", str(empty))
    at = app()
    assert not at.exception
    assert f"MNIST is not in `{empty.resolve()}` yet." in texts(at.warning)
    advice = texts(at.markdown)
    assert str(empty.resolve() / "MNIST" / "raw") in advice and "MNIST_DATA_DIR" in advice
    assert not at.image
    assert "No MNIST in" in texts(at.sidebar.caption)


def test_home_download_failure_is_an_error_message_not_a_traceback(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MNIST_DATA_DIR", str(empty))

    def offline(*args, **kwargs):  # what torchvision raises when every mirror is unreachable
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got:\n<urlopen error [Errno -3]>")

    monkeypatch.setattr("torchvision.datasets.MNIST", offline)
    at = app()
    next(button for button in at.button if button.label == "Download MNIST").click().run()
    assert not at.exception
    message = texts(at.error)
    assert "could not be downloaded" in message and "MNIST_DATA_DIR" in message


@pytest.mark.integration  # trains a model (seconds)
def test_home_shows_the_selected_models_card(tiny_data, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    run = train_tiny(tiny_data, "card", epochs=2)
    accuracy = run.metrics()[-1]["test_acc"]
    at = app()
    assert not at.exception
    assert at.sidebar.selectbox[0].value == f"run:{run.id}"
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Test accuracy"] == f"{accuracy:.2%}"
    assert metrics["Epochs"] == "2" and metrics["Training images"] == "600"
    assert "fast preset" in texts(at.markdown)
    (figure,) = plotly_figures(at)
    assert figure["data"][0]["y"] == pytest.approx([run.metrics()[-1][f"test_acc_{d}"] for d in range(10)])


def test_home_shows_the_bundled_models_card(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    run = train_tiny(tiny_data, "bundled", epochs=1)
    card = tmp_path / "model_card.json"
    card.write_text(json.dumps({"command": "python -m mnist_core train --preset seed", "test_acc": 0.99}))
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: True)
    monkeypatch.setattr("mnist_core.catalog.PRETRAINED_PATH", run.checkpoint_path)
    monkeypatch.setattr("mnist_core.pretrained.MODEL_CARD_PATH", card)
    at = app()
    assert not at.exception
    assert at.sidebar.selectbox[0].value == "bundled"
    assert "Bundled model" in texts(at.markdown)
    assert at.expander[0].label.startswith("Model card")
    assert json.loads(at.json[0].value)["command"] == "python -m mnist_core train --preset seed"


def test_every_page_in_the_navigation_runs_without_an_exception(tiny_data, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    at = app()
    for page, title in [
        ("pages/train.py", "Train"),
        ("pages/runs.py", "Runs"),
        ("pages/explore.py", None),
        ("pages/draw.py", None),
        ("pages/robustness.py", "Robustness"),
        ("pages/home.py", "MNIST Lab"),
    ]:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        if title:
            assert at.title[0].value == title


def test_the_server_asks_for_one_openmp_thread_unless_the_operator_chose(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert not app().exception
    assert os.environ["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert not app().exception
    assert os.environ["OMP_NUM_THREADS"] == "3"
