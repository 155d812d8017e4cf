"""Bundling a finished run as the pretrained model: checkpoint, model card with robustness before and after, test map."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mnist_core import maps
from mnist_core.checkpoint import load_checkpoint
from mnist_core.pretrained import build
from tests.app_support import trained_run

pytestmark = pytest.mark.integration  # trains a tiny run through the CLI


@pytest.fixture
def bundle_dir(tmp_path, monkeypatch):
    """Where build writes, instead of the package's own pretrained/ folder, which holds the model before."""
    folder = tmp_path / "pretrained"
    folder.mkdir()
    previous = tmp_path / "previous.pt"
    monkeypatch.setattr(build, "PRETRAINED_PATH", folder / "mnist_cnn.pt")
    monkeypatch.setattr(build, "MODEL_CARD_PATH", folder / "model_card.json")
    monkeypatch.setattr(build, "TEST_MAP_PATH", folder / "test_map.npy")
    monkeypatch.setattr(build, "TEST_MAP_INFO_PATH", folder / "test_map.json")
    monkeypatch.setattr(build, "pretrained_available", lambda: previous.is_file())
    monkeypatch.setattr(build, "load_pretrained", lambda: load_checkpoint(previous))
    return folder, previous


def test_a_run_becomes_the_bundled_model_with_its_card_and_map(tmp_path, bundle_dir):
    folder, previous = bundle_dir
    before = trained_run(tmp_path / "before", "before", epochs=1)
    shutil.copyfile(before.run.checkpoint_path, previous)
    trained = trained_run(tmp_path / "after", "after", epochs=2)
    data = str(trained.data_dir)
    command = "python -m mnist_core train --epochs 2 ..."
    assert build.main([str(trained.run.path), "--command", command, "--data-dir", data]) == 0

    assert (folder / "mnist_cnn.pt").read_bytes() == trained.run.checkpoint_path.read_bytes()
    card = json.loads((folder / "model_card.json").read_text())
    assert card["command"] == command and card["epochs_trained"] == 2
    assert card["test_accuracy"] == pytest.approx(trained.run.metrics()[-1]["test_acc"])  # the trainer's own figure
    after, replaced = card["robustness"]["after"], card["robustness"]["before"]
    assert after["checkpoint_sha256"] == card["checkpoint_sha256"] and after["clean"] == pytest.approx(card["test_accuracy"])
    assert replaced["checkpoint_sha256"] == load_checkpoint(previous).digest
    assert set(after["corruptions"]) == set(replaced["corruptions"]) and "noise" in after["corruptions"]
    # The shipped map is the run's own end-of-run map, for exactly this checkpoint.
    shipped, info = np.load(folder / "test_map.npy"), json.loads((folder / "test_map.json").read_text())
    assert shipped.dtype == np.float16
    assert np.allclose(shipped, np.load(trained.run.path / maps.MAP_FILE), rtol=1e-3, atol=1e-2)
    assert info["digest"] == card["checkpoint_sha256"] and info["n"] == len(shipped)


def test_a_run_without_its_end_of_run_map_is_refused_and_nothing_is_written(tmp_path, bundle_dir, capsys):
    folder, _ = bundle_dir
    trained = trained_run(tmp_path / "bare", "bare", epochs=1)
    (trained.run.path / maps.SUMMARY_FILE).unlink()
    assert build.main([str(trained.run.path), "--command", "x", "--data-dir", str(trained.data_dir)]) == 2
    assert "no end-of-run map" in capsys.readouterr().err
    assert not any(folder.iterdir())
