"""Label-issue ranking: hand-made probabilities, a trained model on purposely flipped labels, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_core.analysis import analyze
from mnist_core.checkpoint import load_checkpoint
from mnist_core.cli import main
from mnist_core.data import load_split
from mnist_core.label_issues import class_thresholds, find_label_issues
from tests.trained import FLIPPED, make_data, train_checkpoint, true_test_labels


def _probs(rows):
    """Rows of {class: probability}, the rest of each row spread evenly."""
    out = np.zeros((len(rows), 10))
    for i, row in enumerate(rows):
        rest = (1 - sum(row.values())) / (10 - len(row))
        out[i] = rest
        for k, v in row.items():
            out[i, k] = v
    return out


def test_thresholds_are_mean_self_confidence():
    probs = _probs([{0: 0.9}, {0: 0.5}, {1: 0.8}])
    thresholds = class_thresholds(probs, np.array([0, 0, 1]))
    assert thresholds[0] == pytest.approx(0.7) and thresholds[1] == pytest.approx(0.8)
    assert np.isinf(thresholds[2:]).all()


def test_hand_computed_ranking():
    # Classes 0 and 1; thresholds t0 = mean(0.9, 0.95, 0.1) = 0.65, t1 = mean(0.9, 0.3) = 0.6.
    probs = _probs([{0: 0.9, 1: 0.05}, {0: 0.95, 1: 0.02}, {0: 0.1, 1: 0.85}, {0: 0.05, 1: 0.9}, {0: 0.68, 1: 0.3}])
    labels = np.array([0, 0, 0, 1, 1])
    issues = find_label_issues(probs, labels)
    # Sample 2 (labelled 0, p1 = 0.85 >= t1) and sample 4 (labelled 1, p0 = 0.68 >= t0) are suspects.
    assert [(i.index, i.given, i.suggested) for i in issues] == [(2, 0, 1), (4, 1, 0)]
    assert issues[0].score == pytest.approx(0.75) and issues[1].score == pytest.approx(0.38)
    assert find_label_issues(probs, labels, top=1) == issues[:1]
    assert issues[0].to_dict() == {"index": 2, "given": 0, "suggested": 1, "score": pytest.approx(0.75)}


def test_no_issue_when_model_agrees_and_when_empty():
    probs = np.eye(10)[[0, 1, 2, 3]] * 0.9 + 0.01
    assert find_label_issues(probs, np.array([0, 1, 2, 3])) == []
    assert find_label_issues(np.empty((0, 10)), np.empty(0, dtype=np.int64)) == []
    with pytest.raises(ValueError):
        find_label_issues(np.ones((3, 9)), np.zeros(3))


@pytest.fixture(scope="module")
def flipped_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flipped")
    data_dir = make_data(folder / "data", flipped=FLIPPED)
    checkpoint = train_checkpoint(data_dir, folder / "model.pt")
    return data_dir, checkpoint


def test_flipped_labels_rank_first(flipped_setup, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path))
    data_dir, path = flipped_setup
    split = load_split("test", data_dir)
    result = analyze(load_checkpoint(path), split)
    issues = find_label_issues(result.probabilities, result.labels)
    top = issues[: len(FLIPPED)]
    assert {i.index for i in top} == set(FLIPPED)
    truth = true_test_labels()
    assert all(i.given == FLIPPED[i.index] and i.suggested == truth[i.index] for i in top)
    assert all(i.score > 0.5 for i in top)


def test_cli_prints_ranking_as_json(flipped_setup, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path))
    data_dir, path = flipped_setup
    code = main(["label-issues", "--checkpoint", str(path), "--data-dir", str(data_dir), "--top", "3"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) == 3 and set(printed[0]) == {"index", "given", "suggested", "score"}
    assert {row["index"] for row in printed} <= set(FLIPPED)
    assert [row["score"] for row in printed] == sorted((row["score"] for row in printed), reverse=True)


def test_cli_train_split(flipped_setup, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path))
    data_dir, path = flipped_setup
    assert main(["label-issues", "--checkpoint", str(path), "--data-dir", str(data_dir), "--split", "train"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert isinstance(printed, list) and all(0 <= row["index"] < 600 for row in printed)


def _no_download(root):
    from mnist_core.data import _missing_message
    from mnist_core.errors import DatasetError

    raise DatasetError(_missing_message(root, "no internet in tests"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--checkpoint", "{missing}"], "does not exist"),
        (["--checkpoint", "{garbage}"], "not a readable checkpoint"),
        (["--checkpoint", "{model}", "--data-dir", "{empty}"], "MNIST is not in"),
        (["--checkpoint", "{model}", "--top", "0"], "--top"),
        (["--checkpoint", "{model}", "--split", "validation"], "invalid choice"),
        (["--checkpoint", "{model}", "--top", "many"], "invalid int"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(flipped_setup, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path))
    # The empty folder must not trigger a real download attempt: there is no internet here.
    monkeypatch.setattr("mnist_core.data._download", _no_download)
    data_dir, path = flipped_setup
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    names = {"missing": tmp_path / "nope.pt", "garbage": garbage, "model": path, "empty": tmp_path / "empty"}
    argv = ["label-issues", *(arg.format(**names) for arg in argv)]
    if "--data-dir" not in argv:
        argv += ["--data-dir", str(data_dir)]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1


def test_cli_without_checkpoint_uses_the_bundled_model(flipped_setup, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path))
    data_dir, path = flipped_setup
    monkeypatch.setattr("mnist_core.pretrained.PRETRAINED_PATH", path)
    assert main(["label-issues", "--data-dir", str(data_dir), "--top", "5"]) == 0
    bundled = json.loads(capsys.readouterr().out)
    assert main(["label-issues", "--checkpoint", str(path), "--data-dir", str(data_dir), "--top", "5"]) == 0
    assert bundled == json.loads(capsys.readouterr().out) and {row["index"] for row in bundled} == set(FLIPPED)
