"""Explore's "compare with" driven by AppTest: the bundled model (A) against a run trained on tiny data (B)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mnist_core import analysis
from mnist_core.checkpoint import load_checkpoint
from mnist_core.data import load_split
from mnist_core.evaluate import predict_logits
from mnist_core.pretrained import PRETRAINED_PATH
from tests.app_support import TrainedRun, app, serve, texts, trained_run

pytestmark = pytest.mark.integration  # every test here opens a page on a model trained for it

PAGE = "pages/explore.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainedRun:
    return trained_run(tmp_path_factory.mktemp("compare"), "other", epochs=1)


@pytest.fixture
def env(trained, tmp_path, monkeypatch):
    """Bundled model and the run in the catalogue; returns (run, A's and B's test predictions, the labels)."""
    serve(monkeypatch, trained.data_dir, trained.runs_dir, tmp_path / "cache")
    run, split = trained.run, load_split("test", trained.data_dir)
    a = predict_logits(load_checkpoint(PRETRAINED_PATH).model, split.images).argmax(1).numpy()
    b = predict_logits(load_checkpoint(run.checkpoint_path).model, split.images).argmax(1).numpy()
    yield run, a, b, split.labels.numpy()
    analysis.clear_memory()


def _matches(at) -> int:
    found = [re.match(r"\*\*([\d,]+) samples? match", m.value) for m in at.markdown]
    (count,) = [int(m.group(1).replace(",", "")) for m in found if m]
    return count


def _compared(run) -> object:
    at = app(PAGE)
    assert at.selectbox(key="model_key").value == "bundled"
    at.selectbox(key="explore_compare").set_value(f"run:{run.id}").run()
    assert not at.exception
    return at


def test_agreement_table_counts_and_per_digit_chart(env):
    run, a, b, labels = env
    at = _compared(run)
    (table,) = [frame.value for frame in at.dataframe if list(frame.value.columns) == ["B right", "B wrong"]]
    a_right, b_right = a == labels, b == labels
    assert table.loc["A right", "B right"] == (a_right & b_right).sum()
    assert table.loc["A right", "B wrong"] == (a_right & ~b_right).sum()
    assert table.loc["A wrong", "B right"] == (~a_right & b_right).sum()
    assert table.loc["A wrong", "B wrong"] == (~a_right & ~b_right).sum()
    assert "explore_compare_per_class" in [chart.key for chart in at.get("plotly_chart")]


def test_a_cell_fills_the_gallery_with_exactly_its_samples(env):
    run, a, b, labels = env
    at = _compared(run)
    at.session_state["explore_compare_table"] = {"selection": {"rows": [], "columns": [], "cells": [[1, "B right"]]}}
    at.run()
    assert not at.exception
    expected = np.flatnonzero((a != labels) & (b == labels))
    assert _matches(at) == len(expected)
    assert "only B right" in texts(at.info)


def test_disagreement_gallery_is_captioned_with_both_predictions(env):
    run, a, b, labels = env
    at = _compared(run)
    disagree = np.flatnonzero(a != b)
    assert f"**{len(disagree):,} samples where A and B predict different digits**" in texts(at.markdown)
    captions = [c for image in at.image for c in image.captions if c.startswith("given ")]
    first = int(disagree[0])
    assert captions[0] == f"given {labels[first]} · A {a[first]} · B {b[first]}"
    assert len(captions) == min(len(disagree), 24)


def test_a_deleted_comparison_model_falls_back_to_none(env, monkeypatch, tmp_path):
    run, *_ = env
    at = _compared(run)
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(tmp_path / "empty"))
    at.run()
    assert not at.exception
    assert at.selectbox(key="explore_compare").value is None
