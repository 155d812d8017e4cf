"""The Train page, driven by AppTest: validation, a real background run on tiny data, the limit, Stop, reload.

st.fragment(run_every=...) does not tick inside AppTest, so these tests poll the run
store (the page's own source of truth) and rerun the page to see what it shows.
"""

from __future__ import annotations

import time

import pytest

from mnist_core.runs import RunStore
from mnist_core.testing import kill_trainers
from tests.app_support import app, plotly_figures, texts, wait_until_done


@pytest.fixture(autouse=True)
def _tiny_setup(tiny_data, runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    monkeypatch.delenv("MNIST_LAB_MAX_RUNS", raising=False)
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: False)


def _field(at, label):
    return next(widget for widget in [*at.number_input, *at.selectbox, *at.text_input] if widget.label == label)


def _element_after(node, target):
    """The element right after `target` in the same block (depth-first search), or None."""
    children = list(getattr(node, "children", {}).values())
    for index, child in enumerate(children):
        if child is target:
            return children[index + 1] if index + 1 < len(children) else None
        found = _element_after(child, target)
        if found is not None:
            return found
    return None


def _start(at, **fields):
    for label, value in fields.items():
        _field(at, label).set_value(value)
    next(button for button in at.button if button.label == "Start training").click().run()
    return at


@pytest.fixture
def store():
    store = RunStore()
    yield store
    for run in store.active():
        run.request_stop()
    kill_trainers(store.root)


@pytest.mark.parametrize(
    ("label", "value", "message"),
    [
        ("Epochs", 0, "epochs: must be between 1 and 200, got 0."),
        ("Batch size", 100_000, "batch_size: must be between 1 and 8192, got 100000."),
        ("Learning rate", 0.0, "lr: must be above 0 and at most 10, got 0.0."),
        ("Label smoothing", 1.0, "label_smoothing: must be a number from 0 up to (not including) 1, got 1.0."),
        ("Training images", -5, "train_subset: must be at least 1, got -5."),
        ("CPU threads", 0, "threads: must be between 1 and 256, got 0."),
        ("Run name", "../etc", "Run name '../etc' is not allowed"),
    ],
)
def test_bad_values_are_refused_under_their_field_and_nothing_starts(store, label, value, message):
    at = app("pages/train.py")
    _start(at, **{label: value})
    assert not at.exception
    errors = [error for error in at.error if message in error.value]
    assert len(errors) == 1, texts(at.error)
    assert _element_after(at.main, _field(at, label)) is errors[0]  # right under its own widget
    assert store.list() == []
    assert _field(at, label).value == value  # the user's value is kept for correction


@pytest.mark.integration
def test_a_tiny_run_started_from_the_form_trains_in_the_background_and_finishes(store):
    at = app("pages/train.py")
    assert at.segmented_control(key="train_preset").value == "seed"  # the preset picker
    _start(at, Epochs=2, Device="cpu", **{"Run name": "ui-tiny"})
    assert not at.exception and not at.error
    (run,) = store.list()
    assert run.name == "ui-tiny"
    assert run.config().epochs == 2 and run.config().preset == "seed" and run.config().device == "cpu"
    # The page shows the run from the store right away, with both bars and the Stop button.
    assert any(run.id in header.value for header in at.subheader)
    assert len(at.get("progress")) == 2
    assert "Stop" in [button.label for button in at.button]

    progress = wait_until_done(run)
    assert progress["status"] == "finished", progress
    at.run()
    assert not at.exception
    assert f"Run `{run.id}`: finished" in texts(at.subheader)
    assert "Finished 2 epochs" in texts(at.success)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Test accuracy"] == f"{run.metrics()[-1]['test_acc']:.2%}"
    assert [link.proto.page for link in at.get("page_link")][-1].endswith("explore")
    figures = plotly_figures(at)
    assert [figure["layout"]["title"]["text"] for figure in figures] == [
        "Loss per epoch",
        "Accuracy per epoch",
        "Test accuracy per digit after epoch 2",
        "Loss during training",  # the step curves, every few dozen batches
        "Accuracy during training",
    ]
    assert figures[0]["data"][1]["y"] == pytest.approx([row["test_loss"] for row in run.metrics()])
    # "Use this model" selects it in the sidebar's picker, here and on any page this session opens next.
    next(button for button in at.button if button.label == "Use this model").click().run()
    assert at.session_state["model_key"] == f"run:{run.id}"
    assert at.sidebar.selectbox[0].value == f"run:{run.id}"
    assert at.switch_page("pages/draw.py").run().sidebar.selectbox[0].value == f"run:{run.id}"


@pytest.mark.integration
def test_a_running_run_survives_a_reload_refuses_a_second_start_and_stops_from_the_button(store):
    at = app("pages/train.py")
    _start(at, Epochs=200, Device="cpu")
    (run,) = store.list()
    # A new session (reload, second tab) finds the same run in the store and shows it, without a new start.
    reloaded = app("pages/train.py")
    assert any(run.id in header.value for header in reloaded.subheader)
    assert len(store.list()) == 1
    # A second start while it trains is refused with the server's limit, not silently queued.
    _start(reloaded, Epochs=1)
    assert "this server allows 1 at a time" in texts(reloaded.warning)
    assert len(store.list()) == 1
    wait_for_epochs(run, 1)  # so that the stopped run has curves to draw
    next(button for button in reloaded.button if button.label == "Stop").click().run()
    assert run.stop_requested()
    assert "Stopping" in texts(reloaded.caption)
    progress = wait_until_done(run)
    assert progress["status"] == "stopped", progress
    reloaded.run()
    assert not reloaded.exception
    assert f"Run `{run.id}`: stopped" in texts(reloaded.subheader)
    assert "Stopped after" in texts(reloaded.warning)
    # Its curves span the epochs it trained, not the 200 it planned.
    done = len(run.metrics())
    ranges = [f["layout"]["xaxis"]["range"] for f in plotly_figures(reloaded) if "range" in f["layout"].get("xaxis", {})]
    assert ranges and all(high <= done + 1 for _, high in ranges), (done, ranges)


def wait_for_epochs(run, epochs: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while len(run.metrics()) < epochs:
        assert time.monotonic() < deadline, f"{run.id} has not finished {epochs} epoch(s) after {timeout_s} s"
        time.sleep(0.2)


def test_without_the_dataset_the_page_warns_before_a_start(tmp_path, monkeypatch):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("MNIST_DATA_DIR", str(empty))
    at = app("pages/train.py")
    assert not at.exception
    assert f"MNIST is not in `{empty.resolve()}`: a run will try to download it" in texts(at.warning)


@pytest.mark.integration
def test_a_run_that_fails_shows_its_error(store):
    at = app("pages/train.py")
    # Valid for TrainConfig, but the tiny training set has only 600 images: the trainer refuses it.
    _start(at, Epochs=1, Device="cpu", **{"Training images": 1000})
    (run,) = store.list()
    progress = wait_until_done(run)
    assert progress["status"] == "failed"
    assert "600" in progress["error"]
    at.run()
    assert not at.exception
    assert f"Run `{run.id}`: failed" in texts(at.subheader)
    assert progress["error"] in texts(at.error)
