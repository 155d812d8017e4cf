"""The Runs page, driven by AppTest: the table, overlaid curves, the heatmap, downloads and deletion."""

from __future__ import annotations

import json

import pytest

from mnist_core.config import PRESETS, TrainConfig
from mnist_core.errors import RunError
from mnist_core.runs import RunStore, mark_failed
from tests.app_support import app, plotly_figures, texts, train_tiny


@pytest.fixture(autouse=True)
def _tiny_setup(tiny_data, runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: False)


@pytest.fixture
def three_runs(tiny_data):
    """Two finished runs (1 and 2 epochs) and one that failed before training."""
    one = train_tiny(tiny_data, "one", epochs=1)
    two = train_tiny(tiny_data, "two", epochs=2)
    failed = RunStore().create(TrainConfig.from_preset("seed"), "broken")
    mark_failed(failed, "MNIST is not in /nowhere and could not be downloaded.")
    return one, two, failed


def _button(at, label):
    return next(button for button in at.button if button.label == label)


def test_no_runs_points_to_the_train_page():
    at = app("pages/runs.py")
    assert not at.exception
    assert "No runs yet" in texts(at.info)
    assert at.get("page_link")[0].proto.page.endswith("train")


def test_the_table_lists_every_run_with_recipe_and_accuracy(three_runs):
    one, two, failed = three_runs
    at = app("pages/runs.py")
    assert not at.exception
    table = at.dataframe[0].value.set_index("name")
    # The store's order (newest first; runs started in the same second sort by name).
    assert list(table.index) == [run.name for run in RunStore().list()]
    assert sorted(table.index) == ["broken", "one", "two"]
    assert table.loc["two", "status"] == "finished" and table.loc["two", "epochs"] == "2/2"
    assert table.loc["two", "preset"] == "fast" and table.loc["two", "batch_size"] == PRESETS["fast"]["batch_size"]
    assert table.loc["two", "best_test_acc"] == pytest.approx(max(r["test_acc"] for r in two.metrics()))
    assert table.loc["one", "final_test_acc"] == pytest.approx(one.metrics()[-1]["test_acc"])
    assert table.loc["broken", "status"] == "failed"
    assert "could not be downloaded" in table.loc["broken", "error"]


def test_runs_are_overlaid_and_the_metric_can_change(three_runs):
    one, two, _ = three_runs
    at = app("pages/runs.py")
    overlay = at.multiselect(key="runs_overlay")
    assert overlay.options == [f"{two.id} (finished)", f"{one.id} (finished)"]  # only runs with curves
    assert overlay.value == [two.id, one.id]
    overlay_figure = plotly_figures(at)[0]
    assert [trace["name"] for trace in overlay_figure["data"]] == [two.id, one.id]
    assert overlay_figure["data"][0]["y"] == pytest.approx([r["test_acc"] for r in two.metrics()])

    at.button_group(key="runs_metric").set_value("train_loss").run()
    assert not at.exception
    figure = plotly_figures(at)[0]
    assert figure["layout"]["yaxis"]["title"]["text"] == "train loss"
    assert figure["data"][1]["y"] == pytest.approx([r["train_loss"] for r in one.metrics()])

    overlay.unselect(one.id).run()
    assert [trace["name"] for trace in plotly_figures(at)[0]["data"]] == [two.id]


def test_one_run_shows_its_heatmap_downloads_and_a_failed_runs_error(three_runs):
    one, two, failed = three_runs
    at = app("pages/runs.py")
    detail = at.selectbox(key="runs_detail")
    detail.set_value(failed.id).run()
    assert "could not be downloaded" in texts(at.error)
    assert "no completed epoch" in texts(at.info)
    downloads = {button.label: button for button in at.get("download_button")}
    assert downloads["Metrics CSV"].proto.disabled and downloads["Checkpoint"].proto.disabled

    detail.set_value(two.id).run()
    assert not at.exception and not at.error
    heatmap = plotly_figures(at)[-1]
    assert heatmap["layout"]["title"]["text"] == "Test accuracy per digit and epoch"
    assert heatmap["data"][0]["x"] == [1, 2]
    assert heatmap["data"][0]["z"][3] == pytest.approx([r["test_acc_3"] for r in two.metrics()])
    downloads = {button.label: button for button in at.get("download_button")}
    assert not downloads["Metrics CSV"].proto.disabled and not downloads["Checkpoint"].proto.disabled
    assert json.loads(at.json[0].value)["epochs"] == 2


def test_delete_asks_for_confirmation_and_can_be_cancelled(three_runs):
    one, _, _ = three_runs
    at = app("pages/runs.py")
    at.selectbox(key="runs_detail").set_value(one.id).run()
    _button(at, "Delete run…").click().run()
    assert f"Delete run `{one.id}`" in texts(at.warning)
    assert one.path.is_dir()  # nothing deleted before the confirmation
    _button(at, "Cancel").click().run()
    assert not at.warning and one.path.is_dir()


def test_delete_after_confirmation_removes_the_run_everywhere(three_runs):
    one, two, failed = three_runs
    at = app("pages/runs.py")
    at.selectbox(key="runs_detail").set_value(one.id).run()
    _button(at, "Delete run…").click().run()
    _button(at, "Yes, delete it").click().run()
    assert not at.exception
    assert not one.path.exists()
    assert sorted(run.id for run in RunStore().list()) == sorted([failed.id, two.id])
    assert sorted(at.dataframe[0].value["name"]) == ["broken", "two"]
    assert one.id not in at.multiselect(key="runs_overlay").options
    assert f"Deleted run {one.id}." in texts(at.toast)


def test_a_training_run_cannot_be_deleted(tiny_data):
    run = RunStore().create(TrainConfig.from_preset("fast"), "busy")  # queued: counts as training
    at = app("pages/runs.py")
    assert at.selectbox(key="runs_detail").value == run.id
    assert _button(at, "Delete run…").disabled
    with pytest.raises(RunError, match="still training"):
        RunStore().delete(run.id)
