"""Comparing two models: the agreement counts on hand-made outputs, and the `compare` command on real checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnist_core.analysis import Analysis
from mnist_core.checkpoint import build_meta, load_checkpoint, save_checkpoint
from mnist_core.cli import main as cli_main
from mnist_core.compare import Comparison
from mnist_core.data import load_split
from mnist_core.evaluate import predict_logits
from mnist_core.model import MnistCNN
from mnist_core.pretrained import PRETRAINED_PATH


def _analysis(labels, predictions) -> Analysis:
    n = len(labels)
    probabilities = np.full((n, 10), 0.01, dtype=np.float32)
    probabilities[np.arange(n), predictions] = 0.91
    zeros = np.zeros(n, np.float32)
    return Analysis("d", "test", "c", probabilities, np.asarray(labels), zeros, np.zeros((n, 128), np.float32))


LABELS = [0, 0, 1, 1, 2, 2]
A = [0, 0, 1, 7, 5, 2]  # right, right, right, wrong, wrong, right
B = [0, 3, 1, 1, 5, 4]  # right, wrong, right, right, wrong, wrong


def test_counts_cells_per_class_and_disagreements():
    comparison = Comparison(_analysis(LABELS, A), _analysis(LABELS, B))
    assert comparison.counts() == {"both_right": 2, "a_only": 2, "b_only": 1, "both_wrong": 1}
    assert comparison.cell("a_only").tolist() == [False, True, False, False, False, True]
    assert comparison.per_class() == {
        "0": {"a": 1.0, "b": 0.5},
        "1": {"a": 0.5, "b": 1.0},
        "2": {"a": 0.5, "b": 0.0},
        **{str(d): {"a": 0.0, "b": 0.0} for d in range(3, 10)},
    }
    # Sample 4 is wrong for both, but with the same digit: not a disagreement.
    assert comparison.to_dict()["disagreements"] == [
        {"index": 1, "given": 0, "a": 0, "b": 3},
        {"index": 3, "given": 1, "a": 7, "b": 1},
        {"index": 5, "given": 2, "a": 2, "b": 4},
    ]
    assert comparison.caption(3) == "given 1 · A 7 · B 1"


def test_two_different_splits_are_refused():
    with pytest.raises(ValueError, match="same split"):
        Comparison(_analysis(LABELS, A), _analysis(LABELS[:-1], B[:-1]))


@pytest.mark.integration  # trains a model (seconds)
def test_compare_command_prints_the_counts_of_two_real_models(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_checkpoint(run_dir / "model.pt", MnistCNN(), build_meta())  # untrained: mostly wrong, unlike the bundled model
    assert cli_main(["compare", "bundled", str(run_dir), "--data-dir", str(tiny_data)]) == 0
    output = json.loads(capsys.readouterr().out)
    split = load_split("test", tiny_data)
    labels = split.labels.numpy()
    a = predict_logits(load_checkpoint(PRETRAINED_PATH).model, split.images).argmax(1).numpy()
    b = predict_logits(load_checkpoint(run_dir / "model.pt").model, split.images).argmax(1).numpy()
    assert output["n"] == 200 and output["split"] == "test"
    assert output["both_right"] == int(((a == labels) & (b == labels)).sum())
    assert output["a_only"] == int(((a == labels) & (b != labels)).sum())
    assert output["b_only"] == int(((a != labels) & (b == labels)).sum())
    assert output["both_wrong"] == int(((a != labels) & (b != labels)).sum())
    assert output["disagreements"]  # the two models really differ
    assert [d["index"] for d in output["disagreements"]] == np.flatnonzero(a != b).tolist()
    first = output["disagreements"][0]
    assert (first["given"], first["a"], first["b"]) == (labels[first["index"]], a[first["index"]], b[first["index"]])
    assert output["per_class"]["3"]["a"] == pytest.approx((a[labels == 3] == 3).mean())


def test_compare_command_with_a_missing_model_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli_main(["compare", "bundled", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "without a model.pt" in error and error.count("\n") == 1
    assert cli_main(["compare", "bundled", str(tmp_path / "nothing.pt")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
