"""The Explore page driven by AppTest: a real finished run on tiny data with purposely flipped test labels."""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest

from mnist_core import analysis
from mnist_core.checkpoint import load_checkpoint
from mnist_core.data import load_split
from tests.app_support import TrainedRun, app, serve, stills, texts, trained_run
from tests.trained import FLIPPED
from ui import charts, explorer
from ui.explorer import NEIGHBOURS, TILE_COLUMNS

PAGE = "pages/explore.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainedRun:
    """Tiny data with flipped test labels and one finished run trained on it by the real CLI (once per module)."""
    return trained_run(tmp_path_factory.mktemp("explore"), "explore", epochs=4, flipped=FLIPPED)


@pytest.fixture
def explore_env(trained, tmp_path, monkeypatch):
    """The trained run as the only model, a private analysis cache; returns the test split's analysis."""
    serve(monkeypatch, trained.data_dir, trained.runs_dir, tmp_path / "cache", bundled=False)
    yield analysis.analyze(load_checkpoint(trained.run.checkpoint_path), load_split("test", trained.data_dir))
    analysis.clear_memory()


def _matches(at) -> int:
    found = [re.match(r"\*\*([\d,]+) samples? match", m.value) for m in at.markdown]
    (count,) = [int(m.group(1).replace(",", "")) for m in found if m]
    return count


def _tile_buttons(at) -> list[int]:
    """The sample indices of the tiles in reading order (AppTest lists a grid column by column)."""
    by_column = [int(b.label[1:]) for b in at.button if b.label.startswith("#")]
    n, width = len(by_column), TILE_COLUMNS
    heights = [len(range(c, n, width)) for c in range(width)]
    starts = np.cumsum([0, *heights[:-1]])
    return [by_column[starts[i % width] + i // width] for i in range(n)]


def _captions(at) -> list[str]:
    return [c for image in at.image for c in image.captions]


def test_page_renders_overview_matrix_map_and_error_gallery(explore_env):
    test = explore_env
    at = app(PAGE)
    assert not at.exception
    assert at.title[0].value == "Explore errors"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Accuracy"] == f"{test.evaluation.accuracy:.2%}"
    errors = int((test.predictions != test.labels).sum())
    assert metrics["Errors of 200"] == f"{errors:,}"
    assert errors >= len(FLIPPED)  # the flipped labels are errors of the given labels
    (matrix,) = [frame for frame in at.dataframe if list(frame.value.columns) == [str(d) for d in range(10)]]
    assert np.array_equal(matrix.value.to_numpy(), test.evaluation.confusion)
    assert [chart.key for chart in at.get("plotly_chart")] == ["explore_map", "explore_cartography"]  # the run has dynamics
    assert _matches(at) == errors
    assert len(_tile_buttons(at)) == min(errors, 24)
    # Most confident mistake first.
    assert _tile_buttons(at)[0] == int(np.argmax(np.where(test.predictions != test.labels, test.confidence, -1)))


def test_selecting_a_confusion_cell_filters_the_gallery_to_that_cell(explore_env):
    test = explore_env
    confusion = test.evaluation.confusion.copy()
    np.fill_diagonal(confusion, 0)
    t, p = np.unravel_index(confusion.argmax(), confusion.shape)
    at = app(PAGE)
    at.session_state["explore_cm"] = {"selection": {"rows": [], "columns": [], "cells": [[int(t), str(p)]]}}
    at.run()
    assert not at.exception
    assert _matches(at) == confusion[t, p]
    shown = _tile_buttons(at)
    assert sorted(shown) == sorted(np.flatnonzero((test.labels == t) & (test.predictions == p)).tolist())
    assert all(c.startswith(f"{t} → {p} (") for c in _captions(at))
    assert at.selectbox(key="explore_true").value == t and at.selectbox(key="explore_pred").value == p

    # A diagonal cell lists the correctly classified samples of that digit.
    at.session_state["explore_cm"] = {"selection": {"rows": [], "columns": [], "cells": [[int(t), str(t)]]}}
    at.run()
    assert _matches(at) == test.evaluation.confusion[t, t]


def test_filters_sort_and_pages(explore_env):
    test = explore_env
    at = app(PAGE)
    at.segmented_control(key="explore_show").set_value("All").run()
    assert _matches(at) == 200
    assert len(_tile_buttons(at)) == 24
    at.number_input(key="explore_page").set_value(9).run()
    assert _tile_buttons(at) == [int(i) for i in np.lexsort((np.arange(200), -test.confidence))[192:]]
    at.selectbox(key="explore_true").set_value(3).run()
    assert _matches(at) == int((test.labels == 3).sum())
    assert not at.number_input or at.number_input(key="explore_page").value == 1  # a new filter starts at page 1


def test_map_selection_lists_the_selected_points(explore_env):
    at = app(PAGE)
    points = [{"customdata": [i, 0], "point_index": 0, "curve_number": 0} for i in (5, 9, 150)]
    at.session_state["explore_map"] = {"selection": {"points": points, "point_indices": [], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert _matches(at) == 3 and sorted(_tile_buttons(at)) == [5, 9, 150]
    assert "3 points selected on the map" in texts(at.info)


def test_opening_a_sample_shows_probabilities_saliency_and_neighbours(explore_env, trained):
    test = explore_env
    at = app(PAGE)
    first = _tile_buttons(at)[0]
    next(b for b in at.button if b.label == f"#{first}").click().run()
    assert not at.exception
    assert f"Sample #{first} of the test split" in texts(at.subheader)
    charts = [chart.key for chart in at.get("plotly_chart")]
    # the map, the cartography, the sample's curve over epochs and its probability bars (the Inside panel opens on request)
    assert charts == ["explore_map", "explore_cartography", "explore_story_curve", "explore_probs"]
    captions = _captions(at)
    predicted, given = int(test.predictions[first]), int(test.labels[first])
    assert f"towards {predicted} (predicted)" in captions and f"towards {given} (given)" in captions
    assert "integrated gradients" in texts(at.markdown)
    train = load_split("train")
    # The neighbours come from the training split's features, computed in the background: the page says so, and
    # shows them once they are there (its fragment reruns the page; AppTest does not tick, so the test reruns).
    checkpoint = load_checkpoint(trained.run.checkpoint_path)
    if not analysis.is_cached(checkpoint, train):
        assert "nearest images appear here by themselves" in texts(at.caption)
        deadline = time.monotonic() + 120
        while not analysis.is_cached(checkpoint, train):
            assert time.monotonic() < deadline, "the training split's features were never computed"
            time.sleep(0.2)
        at.run()
    captions = _captions(at)
    neighbours = [int(c[1:]) for c in captions if re.fullmatch(r"#\d+", c) and int(c[1:]) != first]
    labels = train.labels.numpy()
    k = NEIGHBOURS
    assert (
        len(neighbours) == 2 * k
        and {labels[i] for i in neighbours[:k]} == {predicted}
        and {labels[i] for i in neighbours[k:]} == {given}
    )


@pytest.fixture
def without_bank(trained, tmp_path, monkeypatch):
    """The run as an older one, without the training split's outputs its trainer now leaves (`train/`)."""
    runs = tmp_path / "older-runs"
    shutil.copytree(trained.run.path, runs / trained.run.id, ignore=shutil.ignore_patterns("train"))
    serve(monkeypatch, trained.data_dir, runs, tmp_path / "cache", bundled=False)
    yield
    analysis.clear_memory()


def test_a_finished_runs_page_has_its_neighbour_bank_from_the_run_folder(explore_env, trained):
    # Its trainer left the training split's outputs: the sample's nearest images come with the first drawing.
    assert analysis.is_cached(load_checkpoint(trained.run.checkpoint_path), load_split("train"))
    at = app(PAGE)
    first = _tile_buttons(at)[0]
    next(b for b in at.button if b.label == f"#{first}").click().run()
    assert not at.exception and f"Sample #{first} of the test split" in texts(at.subheader)
    assert "Labelled " in texts(at.caption)
    assert "nearest images appear here by themselves" not in texts(at.caption)


def test_the_neighbour_bank_starts_from_the_run_after_the_one_that_sent_the_page(without_bank, monkeypatch):
    # Beside the bank's pass a browser draws the page slower; the pass starts from the session's next run.
    started = []
    monkeypatch.setattr(explorer, "prefetch", lambda checkpoint, split: started.append(split))
    at = app(PAGE)
    assert not at.exception and started == []
    first = _tile_buttons(at)[0]
    next(b for b in at.button if b.label == f"#{first}").click().run()
    assert not at.exception and started and set(started) == {explorer.BANK_SPLIT}
    assert "nearest images appear here by themselves" in texts(at.caption)


def test_the_run_that_turns_the_stills_into_charts_does_not_start_the_bank(without_bank, monkeypatch):
    # That run is not the visitor's doing: a visitor who only reads the page still costs no pass.
    started = []
    monkeypatch.setattr(explorer, "prefetch", lambda checkpoint, split: started.append(split))
    at = app(PAGE, first_drawing=True)
    assert not at.exception and stills(at) and started == []
    at.session_state[charts.INTERACTIVE] = True  # what ui/charts.py sets before it reruns the page
    at.session_state[charts.REDRAW] = True
    at.run()
    assert not at.exception and not stills(at) and at.get("plotly_chart") and started == []
    first = _tile_buttons(at)[0]
    next(b for b in at.button if b.label == f"#{first}").click().run()
    assert started and set(started) == {explorer.BANK_SPLIT}


def test_a_page_opened_on_a_sample_leaves_the_bank_to_a_later_run(without_bank, monkeypatch):
    # A shared link's first run draws the sample's detail: its waiting fragment does not start the pass either.
    started = []
    monkeypatch.setattr(explorer, "prefetch", lambda checkpoint, split: started.append(split))
    at = app(PAGE)
    first = _tile_buttons(at)[0]
    at.session_state[explorer.SAMPLE] = first
    at.session_state[explorer.BANK_DRAWN] = None  # as in a new session: its first run of this model's page
    at.run()
    assert not at.exception and f"Sample #{first} of the test split" in texts(at.subheader) and started == []
    at.run()
    assert started and set(started) == {explorer.BANK_SPLIT}


def test_suspected_label_errors_lists_the_flipped_labels_first(explore_env):
    at = app(PAGE)
    at.segmented_control(key="explore_view").set_value("Suspected label errors").run()
    assert not at.exception
    assert set(_tile_buttons(at)[: len(FLIPPED)]) == set(FLIPPED)
    assert all(re.fullmatch(r"\d → \d \(-?\d\.\d\d\)( ✓)?", c) for c in _captions(at))


def test_train_split(explore_env):
    at = app(PAGE)
    at.segmented_control(key="explore_split").set_value("train").run()
    assert not at.exception
    assert "Errors of 600" in {m.label for m in at.metric}


def test_without_a_model_the_page_says_what_to_do(tiny_data, runs_dir, monkeypatch):
    monkeypatch.setattr("mnist_core.catalog.pretrained_available", lambda: False)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    at = app(PAGE)
    assert not at.exception
    assert "no model to explore yet" in texts(at.info)
