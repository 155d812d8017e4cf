"""The Train form's precision field: its choices, and a run started with bf16 recording it."""

from __future__ import annotations

import pytest

from mnist_core.checkpoint import load_checkpoint
from mnist_core.runs import RunStore
from mnist_core.testing import kill_trainers
from tests.app_support import app, wait_until_done


@pytest.fixture(autouse=True)
def _tiny_setup(tiny_data, runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    monkeypatch.delenv("MNIST_LAB_MAX_RUNS", raising=False)
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: False)


@pytest.fixture
def store():
    store = RunStore()
    yield store
    for run in store.active():
        run.request_stop()
    kill_trainers(store.root)


def _precision(at):
    return next(box for box in at.selectbox if box.label == "Precision")


def test_the_form_offers_fp32_bf16_and_auto_starting_at_fp32():
    at = app("pages/train.py")
    assert not at.exception
    assert list(_precision(at).options) == ["fp32", "bf16", "auto"] and _precision(at).value == "fp32"


@pytest.mark.integration
def test_a_bf16_run_from_the_form_records_bf16(store):
    at = app("pages/train.py")
    _precision(at).set_value("bf16")
    next(box for box in at.number_input if box.label == "Epochs").set_value(1)
    next(box for box in at.number_input if box.label == "Training images").set_value(64)
    next(box for box in at.selectbox if box.label == "Device").set_value("cpu")
    next(button for button in at.button if button.label == "Start training").click().run()
    assert not at.exception and not at.error
    (run,) = store.list()
    assert run.config().precision == "bf16"
    assert wait_until_done(run)["status"] == "finished"
    assert load_checkpoint(run.checkpoint_path).meta["config"]["precision"] == "bf16"
