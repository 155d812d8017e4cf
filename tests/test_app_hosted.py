"""The app in hosted mode (AppTest): caps shown and enforced on the Train page, clear errors, no server paths."""

from __future__ import annotations

import pytest

from mnist_core.config import TrainConfig
from mnist_core.runs import RunStore, mark_failed
from tests.app_support import app, texts
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _hosted(tiny_data, runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    monkeypatch.setenv("MNIST_LAB_HOSTED", "1")
    for name in ("MNIST_LAB_MAX_EPOCHS", "MNIST_LAB_MAX_TRAIN_SUBSET", "MNIST_LAB_MAX_BATCH_SIZE", "MNIST_LAB_MAX_RUNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: False)


def _number(at, label):
    return next(widget for widget in at.number_input if widget.label == label)


def _start(at):
    next(button for button in at.button if button.label == "Start training").click().run()
    return at


def all_text(at) -> str:
    return "\n".join(texts(at.get(kind)) for kind in ("caption", "error", "warning", "markdown", "info"))


def test_train_form_starts_within_the_caps_and_says_so():
    at = app("pages/train.py")
    assert not at.exception
    assert "This server trains at most 5 epoch(s), on at most 20,000 training images" in texts(at.caption)
    assert _number(at, "Epochs").value == 5 and _number(at, "Training images").value == 20_000


def test_a_run_over_the_cap_is_refused_under_its_field():
    at = app("pages/train.py")
    _number(at, "Epochs").set_value(6)
    _start(at)
    assert not at.exception
    assert "epochs: is 6 but this server trains at most 5" in texts(at.error)
    assert RunStore().list() == []


def test_unwritable_runs_folder_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    blocker = tmp_path / "runs-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(blocker))
    at = app("pages/train.py")
    _number(at, "Epochs").set_value(1)
    _number(at, "Training images").set_value(100)
    _start(at)
    assert not at.exception
    shown = texts(at.warning) + texts(at.error)
    assert "Cannot write to the runs folder" in shown and str(tmp_path) not in shown
    assert RunStore(blocker.parent / "other").list() == []


def test_no_server_path_is_shown_when_hosted(tiny_data, runs_dir):
    run = RunStore().create(TrainConfig(epochs=1), "broken")
    mark_failed(run, f"OSError: [Errno 28] No space left on device: '{run.path.resolve()}/.model.pt.x.tmp'")
    at = app("pages/train.py")
    assert not at.exception
    shown = all_text(at)
    assert "No space left on device" in texts(at.error)
    assert str(runs_dir) not in shown and str(tiny_data.resolve()) not in shown
    sidebar = texts(at.sidebar.get("caption"))  # the entry script's sidebar, around the Train page
    assert "MNIST from `…/data`" in sidebar and str(tiny_data.resolve()) not in sidebar


def _every_text(at) -> str:
    """Everything the page sends to the browser, as text: each element's message, sidebar included."""
    found = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            found.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(found)


PAGES = sorted(f"pages/{path.name}" for path in (REPO / "pages").glob("*.py"))


@pytest.mark.parametrize("with_data", [True, False], ids=["with-data", "without-data"])
@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_a_server_path_when_hosted(page, with_data, tiny_data, runs_dir, tmp_path, monkeypatch):
    data_dir = tiny_data if with_data else tmp_path / "empty-data"
    monkeypatch.setenv("MNIST_DATA_DIR", str(data_dir))
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: True)
    run = RunStore().create(TrainConfig(epochs=1), "broken")
    mark_failed(
        run,
        f'DatasetError: MNIST is not in {data_dir.resolve()}. Last output: File "{run.path.resolve()}/train.py", line 3',
    )
    at = app(page)
    assert not at.exception, at.exception
    shown = _every_text(at)
    for secret in (str(tmp_path.resolve()), str(runs_dir.resolve()), str(REPO)):
        assert secret not in shown, f"{page} shows the server path {secret}"
