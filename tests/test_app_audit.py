"""The label audit on the pages, driven by AppTest: Explore's suspects, verdicts that outlive a session, the CSV;
the Train page's audit form and panel."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest

from mnist_core import analysis
from mnist_core.audit import AuditConfig, run_audit
from mnist_core.audit_run import AuditRecorder
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.runs import RunStore
from mnist_core.verdicts import verdicts_csv
from tests.app_support import app, serve, texts
from tests.trained import FLIPPED, make_data
from ui.explorer import TILE_COLUMNS

pytestmark = pytest.mark.integration  # every test here opens a page on a model trained for it

EXPLORE, TRAIN = "pages/explore.py", "pages/train.py"


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """Tiny data with flipped test labels and one finished 2-fold audit of it, made in this process."""
    folder = tmp_path_factory.mktemp("audit")
    data_dir = make_data(folder / "data", flipped=FLIPPED)
    train_split, test_split = load_split("train", data_dir), load_split("test", data_dir)
    config = AuditConfig(TrainConfig(epochs=2, batch_size=16, lr=3e-3, device="cpu", threads=1), folds=2)
    run = RunStore(folder / "runs").create(config, "audit")
    recorder = AuditRecorder(run, config, train_split, test_split)
    recorder.start()
    result = run_audit(config, train_split, test_split, on_fold=recorder.on_fold)
    recorder.finish_audit(result)
    return data_dir, folder / "runs", run


@pytest.fixture
def audit_env(audited, tmp_path, monkeypatch):
    data_dir, runs, run = audited
    serve(monkeypatch, data_dir, runs, tmp_path / "cache")
    (run.path / "verdicts.json").unlink(missing_ok=True)
    yield run
    analysis.clear_memory()


def _audit_tiles(at, split: str) -> list[int]:
    """The audit's tiles in reading order (AppTest lists a grid column by column)."""
    by_column = [int(b.key.rsplit("_", 1)[1]) for b in at.button if b.key and b.key.startswith(f"audit_{split}_")]
    n = len(by_column)
    heights = [len(range(c, n, TILE_COLUMNS)) for c in range(TILE_COLUMNS)]
    starts = np.cumsum([0, *heights[:-1]])
    return [by_column[starts[i % TILE_COLUMNS] + i // TILE_COLUMNS] for i in range(n)]


def _open(split: str, index: int):
    at = app(EXPLORE)
    at.segmented_control(key="audit_split").set_value(split).run()
    at.button(key=f"audit_{split}_{index}").click().run()
    assert not at.exception
    return at


def test_explore_lists_the_audits_suspects_for_both_splits(audit_env):
    at = app(EXPLORE)
    assert not at.exception
    assert at.selectbox(key="audit_run").value == audit_env.id
    # The test split by default (Explore's own split): the flipped test labels are the most suspect.
    tiles = _audit_tiles(at, "test")
    assert len(tiles) == 24 and set(tiles[: len(FLIPPED)]) == set(FLIPPED)
    captions = [c for image in at.image for c in image.captions]
    assert len([c for c in captions if re.fullmatch(r"\d → \d \(-?\d\.\d\d\)( ✓)?", c)]) == 24, captions
    at.segmented_control(key="audit_split").set_value("train").run()
    assert not at.exception and len(_audit_tiles(at, "train")) == 24 and not _audit_tiles(at, "test")


def test_sample_detail_shows_each_fold_models_probabilities(audit_env):
    index = next(iter(FLIPPED))
    at = _open("test", index)
    (table,) = [frame for frame in at.dataframe if "this sample" in frame.value.columns]
    assert f"Audit sample #{index} of the test split" in [h.value for h in at.subheader]
    assert list(table.value["model"]) == ["fold 1", "fold 2"]
    assert set(table.value["this sample"]) == {"never saw it (test set)"}
    assert table.value[[str(d) for d in range(10)]].sum(axis=1).round(4).tolist() == [1.0, 1.0]
    at = _open("train", _audit_tiles(app(EXPLORE).segmented_control(key="audit_split").set_value("train").run(), "train")[0])
    (table,) = [frame for frame in at.dataframe if "this sample" in frame.value.columns]
    assert sorted(table.value["this sample"]) == ["held it out", "trained on it"]


def test_verdicts_survive_a_new_session_and_download_as_csv(audit_env):
    index = next(iter(FLIPPED))
    at = _open("test", index)
    at.segmented_control(key=f"audit_verdict_test_{index}").set_value("wrong").run()
    assert not at.exception
    saved = json.loads((audit_env.path / "verdicts.json").read_text())["verdicts"]
    assert [(v["split"], v["index"], v["given"], v["verdict"]) for v in saved] == [("test", index, FLIPPED[index], "wrong")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", saved[0]["at"])

    again = _open("test", index)  # another session (a reload, another visitor, a restarted server)
    assert again.segmented_control(key=f"audit_verdict_test_{index}").value == "wrong"
    assert "Saved: label wrong" in texts(again.caption)
    assert any("label wrong" in c for image in again.image for c in image.captions)

    rows = list(csv.DictReader(io.StringIO(verdicts_csv(audit_env).decode())))
    assert rows == [
        {
            "index": str(index),
            "split": "test",
            "given": str(FLIPPED[index]),
            "suggested": str(saved[0]["suggested"]),
            "verdict": "wrong",
        }
    ]
    assert "Download verdicts (CSV)" in [b.proto.label for b in at.get("download_button")]


def test_without_an_audit_explore_says_where_to_start_one(tiny_data, runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path / "cache"))
    at = app(EXPLORE)
    assert not at.exception
    assert "No finished label audit yet" in texts(at.info)


def test_train_page_shows_the_finished_audit_and_offers_a_new_one(audit_env):
    at = app(TRAIN)
    assert not at.exception
    assert f"Label audit `{audit_env.id}`: finished" in [h.value for h in at.subheader]
    assert "Audit the labels" in [e.label for e in at.expander]


def _submit(at, label: str):
    (button,) = [b for b in at.get("form_submit_button") if b.proto.label == label]
    button.click().run()
    return at


def test_audit_the_labels_starts_an_audit_with_the_form_values(audit_env, monkeypatch):
    started = []
    monkeypatch.setattr("ui.audit.start_audit", lambda config, **kwargs: started.append(config) or audit_env)
    at = app(TRAIN)
    at.number_input(key="audit_form_folds").set_value(3)
    at.number_input(key="audit_form_train_subset").set_value(1200)
    _submit(at, "Audit the labels")
    assert not at.exception
    assert started == [AuditConfig(TrainConfig.from_preset("fast", train_subset=1200), folds=3)]


def test_retrain_on_cleaned_labels_records_the_audit_and_the_samples_marked_wrong(audit_env, monkeypatch):
    from mnist_core.verdicts import set_verdict

    started = []
    monkeypatch.setattr("ui.audit.start_run", lambda config, **kwargs: started.append(config) or audit_env)
    at = app(TRAIN)
    _submit(at, "Train on cleaned labels")
    assert "marked 'label wrong'" in texts(at.error) and not started  # nothing judged yet: nothing to clean
    set_verdict(audit_env, "train", 11, given=2, suggested=8, verdict="wrong")
    at = app(TRAIN)
    at.segmented_control(key="audit_form_retrain_mode").set_value("relabel")
    _submit(at, "Train on cleaned labels")
    assert not at.exception
    (config,) = started
    assert (config.audit, config.clean, config.changed_indices, config.changed_labels) == (audit_env.id, "relabel", (11,), (8,))
