"""The command line's tools around training: --version, runs, evaluate --predictions, export --onnx."""

from __future__ import annotations

import csv
import io
import json
from importlib.metadata import version

import numpy as np
import pytest

from mnist_core.cli import main
from mnist_core.config import TrainConfig
from mnist_core.runs import RunStore, mark_failed
from mnist_core.testing import synthetic_digits


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"mnist-lab {version('mnist-lab')}"


@pytest.mark.integration  # trains a model (seconds)
def test_runs_lists_each_run_with_kind_status_epochs_and_accuracy(tiny_data, runs_dir, capsys):
    assert (
        main(["train", "--data-dir", str(tiny_data), "--preset", "fast", "--epochs", "2", "--device", "cpu", "--name", "good"])
        == 0
    )
    broken = RunStore().create(TrainConfig(epochs=3), "broken")
    mark_failed(broken, "the disk is full")
    capsys.readouterr()

    assert main(["runs", "--json"]) == 0
    listing = {entry["id"]: entry for entry in json.loads(capsys.readouterr().out)}
    (good,) = [entry for run_id, entry in listing.items() if run_id.endswith("-good")]
    finished = [run for run in RunStore().list() if run.name == "good"][0]
    accuracies = [row["test_acc"] for row in finished.metrics()]
    assert good["kind"] == "train" and good["status"] == "finished"
    assert (good["epochs_done"], good["epochs_planned"]) == (2, 2)
    assert good["final_test_acc"] == pytest.approx(accuracies[-1]) and good["best_test_acc"] == pytest.approx(max(accuracies))
    assert good["started_at"].startswith(finished.id[:4])
    bad = listing[broken.id]
    assert bad["status"] == "failed" and (bad["epochs_done"], bad["epochs_planned"]) == (0, 3)
    assert bad["final_test_acc"] is None

    assert main(["runs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["id", "kind", "status", "epochs"]
    assert any(line.startswith(broken.id) and " failed " in line and " 0/3 " in line for line in table[1:])


def test_runs_of_an_empty_store(runs_dir, capsys):
    assert main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_evaluate_writes_one_row_per_image_that_agrees_with_its_summary(tiny_data, tmp_path, capsys):
    path = tmp_path / "predictions.csv"
    assert main(["evaluate", "--data-dir", str(tiny_data), "--predictions", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert list(rows[0]) == ["index", "label", "prediction", "confidence", *(f"p{d}" for d in range(10))]
    assert [int(row["index"]) for row in rows] == list(range(200))
    # The labels are the ones this test wrote into the IDX file (synthetic_digits with seed 2).
    assert [int(row["label"]) for row in rows] == synthetic_digits(200, seed=2)[1].tolist()
    probabilities = np.array([[float(row[f"p{d}"]) for d in range(10)] for row in rows])
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    assert [int(row["prediction"]) for row in rows] == probabilities.argmax(axis=1).tolist()
    assert [float(row["confidence"]) for row in rows] == pytest.approx(probabilities.max(axis=1).tolist(), abs=1e-5)
    correct = sum(int(row["label"]) == int(row["prediction"]) for row in rows)
    assert report["accuracy"] == pytest.approx(correct / 200) and report["errors"] == 200 - correct


def test_evaluate_into_a_missing_folder_is_one_line(tiny_data, tmp_path, capsys):
    assert main(["evaluate", "--data-dir", str(tiny_data), "--predictions", str(tmp_path / "no" / "such" / "p.csv")]) == 2
    assert "Cannot write" in capsys.readouterr().err


@pytest.mark.integration  # torch.export traces the model: seconds, not milliseconds
def test_export_to_onnx_gives_the_same_logits_in_onnxruntime(tmp_path, capsys):
    import onnxruntime
    import torch

    from mnist_core.pretrained import load_pretrained

    path = tmp_path / "model.onnx"
    assert main(["export", "--onnx", str(path)]) == 0
    assert "wrote" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = torch.randn(7, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    (logits,) = session.run(["logits"], {"image": images.numpy()})
    with torch.no_grad():
        expected = load_pretrained().model(images).numpy()
    assert logits.shape == (7, 10)
    assert np.abs(logits - expected).max() < 1e-4


def test_export_into_a_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["export", "--onnx", str(tmp_path / "missing" / "model.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
