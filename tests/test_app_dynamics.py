"""Explore's training dynamics driven by AppTest: a real run on tiny data (flipped test labels) and its recorded epochs."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from mnist_core import analysis, dynamics
from mnist_core.checkpoint import load_checkpoint
from mnist_core.data import load_split
from tests.app_support import TrainedRun, app, plotly_figures, plotly_values, serve, texts, trained_run
from tests.trained import FLIPPED

pytestmark = pytest.mark.integration  # every test here opens a page on a model trained for it

PAGE = "pages/explore.py"
EPOCHS = 4


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainedRun:
    """Tiny data with flipped test labels and one finished 4-epoch run trained on it by the real CLI."""
    return trained_run(tmp_path_factory.mktemp("dynamics"), "story", epochs=EPOCHS, flipped=FLIPPED)


@pytest.fixture
def env(trained, tmp_path, monkeypatch):
    """The run as the only model; returns (the run, its recorded (E, N, 10) array, the given test labels)."""
    serve(monkeypatch, trained.data_dir, trained.runs_dir, tmp_path / "cache", bundled=False)
    run, data_dir = trained.run, trained.data_dir
    recorded = np.load(run.path / dynamics.FILE_NAME).astype(np.float32)
    yield run, recorded, load_split("test", data_dir).labels.numpy()
    analysis.clear_memory()


def _matches(at) -> int:
    found = [re.match(r"\*\*([\d,]+) samples? match", m.value) for m in at.markdown]
    (count,) = [int(m.group(1).replace(",", "")) for m in found if m]
    return count


def _tiles(at) -> list[int]:
    return sorted(int(b.label[1:]) for b in at.button if b.label.startswith("#"))


def _counts(at):
    (table,) = [frame.value for frame in at.dataframe if "total" in frame.value.index]
    return table


def test_counts_per_digit_for_each_category(env):
    _, recorded, labels = env
    at = app(PAGE)
    assert not at.exception
    assert "Training dynamics" in texts(at.subheader)
    right = recorded.argmax(axis=2) == labels[None, :]
    table = _counts(at)
    assert list(table.columns) == ["Learned late (epoch ≥ 2)", "Forgotten", "Never learned", "Flipped (≥ 2 times)"]
    assert list(table.index) == [*(str(d) for d in range(10)), "total"]
    never = ~right.any(axis=0)
    assert table.loc[[str(d) for d in range(10)], "Never learned"].tolist() == np.bincount(labels[never], minlength=10).tolist()
    assert table.loc["total", "Never learned"] == never.sum()
    late = right.any(axis=0) & ~right[0]  # learned late with k = 2: wrong after epoch 1, right later
    assert table.loc["total", "Learned late (epoch ≥ 2)"] == late.sum()


def test_never_learned_filter_lists_those_samples_among_them_the_flipped_labels(env):
    _, recorded, labels = env
    never = np.flatnonzero(~(recorded.argmax(axis=2) == labels[None, :]).any(axis=0))
    at = app(PAGE)
    at.selectbox(key="explore_story").set_value("never learned").run()
    assert not at.exception
    assert at.segmented_control(key="explore_show").value == "All"
    assert _matches(at) == len(never)
    assert _tiles(at) == sorted(never.tolist())[:24]
    assert set(FLIPPED) <= set(never.tolist())  # a label the images contradict is never learned in four epochs


def test_learned_late_follows_its_epoch(env):
    _, recorded, labels = env
    right = recorded.argmax(axis=2) == labels[None, :]
    first = np.where(right.any(axis=0), right.argmax(axis=0) + 1, 0)
    at = app(PAGE)
    at.selectbox(key="explore_story").set_value("learned late").run()
    at.number_input(key="explore_story_k").set_value(1).run()
    assert not at.exception
    assert _matches(at) == int((first >= 1).sum())  # k = 1: every sample ever right
    assert "Learned late (epoch ≥ 1)" in _counts(at).columns


def test_cartography_selection_fills_the_gallery(env):
    at = app(PAGE)
    figures = plotly_figures(at)
    (cartography,) = [f for f in figures if f["layout"]["title"]["text"] == "Dataset cartography"]
    shown = np.concatenate([plotly_values(trace["customdata"]).reshape(-1) for trace in cartography["data"]])
    assert sorted(shown.tolist()) == list(range(200))  # every test image once
    points = [{"customdata": [i], "point_index": 0, "curve_number": 0} for i in (7, 60, 123)]
    at.session_state["explore_cartography"] = {"selection": {"points": points, "point_indices": [], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert _matches(at) == 3 and _tiles(at) == [7, 60, 123]


def test_a_samples_detail_shows_its_probabilities_over_the_epochs(env):
    _, recorded, labels = env
    at = app(PAGE)
    first = _tiles(at)[0]
    next(b for b in at.button if b.label == f"#{first}").click().run()
    assert not at.exception
    (curve,) = [f for f in plotly_figures(at) if f["layout"]["title"]["text"] == "This sample through training"]
    given = curve["data"][0]
    assert plotly_values(given["x"]).tolist() == list(range(1, EPOCHS + 1))
    assert np.allclose(plotly_values(given["y"]), recorded[:, first, labels[first]])


def test_a_run_without_the_file_and_the_train_split_open_without_dynamics(env, tmp_path, monkeypatch):
    run, _, _ = env
    old = tmp_path / "old-runs" / run.id
    shutil.copytree(run.path, old)
    (old / dynamics.FILE_NAME).unlink()
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(old.parent))
    at = app(PAGE)
    assert not at.exception
    assert "No training story" in texts(at.caption)
    assert "Training dynamics" not in texts(at.subheader)
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(run.path.parent))
    at = app(PAGE)
    at.segmented_control(key="explore_split").set_value("train").run()
    assert not at.exception and "No training story" in texts(at.caption)


def test_a_one_epoch_run_says_it_has_no_story_instead_of_vacuous_filters(env, tmp_path, monkeypatch):
    run, recorded, _ = env
    short = tmp_path / "short-runs" / run.id  # as a run stopped after its first epoch records it
    shutil.copytree(run.path, short)
    dynamics.write(short / dynamics.FILE_NAME, [recorded[0]])
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(short.parent))
    at = app(PAGE)
    assert not at.exception
    assert "it recorded 1 epoch" in texts(at.caption)
    assert "Training dynamics" not in texts(at.subheader)
    assert not [s for s in at.selectbox if s.key == "explore_story"]
    next(b for b in at.button if b.label.startswith("#")).click().run()  # a sample's detail: no one-point curve
    assert not at.exception
    assert not [f for f in plotly_figures(at) if f["layout"]["title"]["text"] == "This sample through training"]


def test_the_map_is_the_precomputed_one_when_the_run_has_it_else_pca_and_the_page_says_so(env, trained, tmp_path, monkeypatch):
    run, _, labels = env
    bare = tmp_path / "bare-runs" / run.id  # the run without its end-of-run analysis, as an older run has none
    shutil.copytree(run.path, bare)
    for name in ("map.npy", "analysis.json"):
        (bare / name).unlink()
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(bare.parent))
    at = app(PAGE)
    assert "PCA, because no better map was precomputed" in texts(at.caption)
    mapped = tmp_path / "mapped-runs" / run.id
    shutil.copytree(bare, mapped)
    points = np.stack([np.arange(200), -np.arange(200)], axis=1).astype(np.float32)  # recognisable coordinates
    np.save(mapped / "map.npy", points)
    digest = load_checkpoint(run.checkpoint_path).digest
    checksum = load_split("test", trained.data_dir).checksum
    summary = {"split": "test", "map_method": "t-SNE", "n": 200, "data_checksum": checksum}
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(mapped.parent))
    # A map that names another checkpoint (model.pt replaced after the run's end) or none (an older run) is not drawn.
    for stale in ({**summary, "digest": "0" * 64}, summary):
        (mapped / "analysis.json").write_text(json.dumps(stale))
        analysis.clear_memory()
        at = app(PAGE)
        assert not at.exception and "t-SNE of the penultimate layer" not in texts(at.caption)
    (mapped / "analysis.json").write_text(json.dumps({**summary, "digest": digest}))
    at = app(PAGE)
    assert not at.exception
    assert "t-SNE of the penultimate layer" in texts(at.caption) and "PCA, because" not in texts(at.caption)
    (feature_map,) = [f for f in plotly_figures(at) if f["layout"]["xaxis"]["title"]["text"] == "component 1"]
    digit = feature_map["data"][0]  # the points of true digit 0
    shown = plotly_values(digit["customdata"]).reshape(-1, 2)[:, 0].astype(int)
    assert set(labels[shown]) == {0}
    assert plotly_values(digit["x"]).tolist() == points[shown, 0].tolist()
