"""Label-issue ranking: hand-made probabilities, a trained model on purposely flipped labels, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_core.analysis import analyze
from mnist_core.checkpoint import load_checkpoint
from mnist_core.cli import main
from mnist_core.data import load_split
from mnist_core.label_issues import class_thresholds, confident_mask, ensemble_probabilities, find_label_issues
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
    assert (thresholds[2:] > 1).all()  # nobody is labelled 2-9: no probability reaches their thresholds


# Classes 0 and 1 (the other eight share the rest of each row). Thresholds:
# t0 = mean(0.9, 0.95, 0.1) = 0.65 over the samples labelled 0, t1 = mean(0.9, 0.3, 0.2) = 0.4667.
HAND_ROWS = [{0: 0.9, 1: 0.05}, {0: 0.95, 1: 0.02}, {0: 0.1, 1: 0.85}, {0: 0.05, 1: 0.9}, {0: 0.68, 1: 0.3}, {0: 0.62, 1: 0.2}]
HAND_LABELS = np.array([0, 0, 0, 1, 1, 1])


def test_hand_computed_ranking_keeps_every_sample_and_flags_the_confident_ones():
    issues = find_label_issues(_probs(HAND_ROWS), HAND_LABELS)
    # 2: p1 = 0.85 >= t1, flagged, 0.85 - 0.1. 5: p0 = 0.62 < t0 and p1 = 0.2 < t1, so no confident class: ranked
    # (0.62 - 0.2) but not flagged. 4: p0 = 0.68 >= t0, flagged. The rest agree with their labels; their suggestion is
    # the likeliest other class (score 0.05 - 0.9 for 0 and 3, 0.02 - 0.95 for 1), equal scores in index order.
    assert [(i.index, i.given, i.suggested, i.confident) for i in issues] == [
        (2, 0, 1, True),
        (5, 1, 0, False),
        (4, 1, 0, True),
        (0, 0, 1, False),
        (3, 1, 0, False),
        (1, 0, 1, False),
    ]
    assert [i.score for i in issues] == pytest.approx([0.75, 0.42, 0.38, -0.85, -0.85, -0.93])
    assert issues[0].to_dict() == {"index": 2, "given": 0, "suggested": 1, "score": pytest.approx(0.75), "confident": True}
    assert confident_mask(_probs(HAND_ROWS), HAND_LABELS).tolist() == [False, False, True, False, True, False]


def test_top_k_returns_min_k_n_entries():
    probs, labels = _probs(HAND_ROWS), HAND_LABELS
    assert find_label_issues(probs, labels, top=2) == find_label_issues(probs, labels)[:2]
    assert len(find_label_issues(probs, labels, top=50)) == len(labels)


def test_several_confident_classes_guess_the_likeliest():
    # Labelled 0 with p0 = 0.2: t1 = 0.5 (sample 1) and t2 = 0.4 (sample 2); sample 0 reaches both, and 2 is likelier.
    probs = _probs([{0: 0.2, 1: 0.35, 2: 0.45}, {1: 0.5}, {2: 0.4}])
    issues = find_label_issues(probs, np.array([0, 1, 2]))
    first = issues[0]
    assert (first.index, first.suggested, first.confident) == (0, 2, True)


def test_a_given_label_tied_with_the_likeliest_class_is_not_flagged():
    # Sample 0 is labelled 1 and reaches t0 = 0.45, but p1 = p0: the model does not contradict its label.
    probs = _probs([{0: 0.45, 1: 0.45}, {0: 0.45}, {1: 0.9}])
    assert not confident_mask(probs, np.array([1, 0, 1]))[0]


def test_no_issue_when_model_agrees_and_when_empty():
    probs = np.eye(10)[[0, 1, 2, 3]] * 0.9 + 0.01
    assert not any(i.confident for i in find_label_issues(probs, np.array([0, 1, 2, 3])))
    assert all(i.score < 0 for i in find_label_issues(probs, np.array([0, 1, 2, 3])))
    assert find_label_issues(np.empty((0, 10)), np.empty(0, dtype=np.int64)) == []
    with pytest.raises(ValueError):
        find_label_issues(np.ones((3, 9)), np.zeros(3))


def _noisy_problem(seed: int, n: int = 2000, flips: int = 150):
    """Dirichlet probabilities peaked on a true label, and labels of which `flips` are changed to another digit."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 10, n)
    concentration = np.full((n, 10), 0.3)
    concentration[np.arange(n), truth] = rng.uniform(1.0, 12.0, n)
    probs = np.array([rng.dirichlet(c) for c in concentration])
    labels = truth.copy()
    chosen = rng.choice(n, flips, replace=False)
    labels[chosen] = (truth[chosen] + rng.integers(1, 10, flips)) % 10
    return probs, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confident_flags_agree_with_cleanlab(seed):
    from cleanlab import filter as filter_module  # a dev dependency (requirements-dev.txt)

    probs, labels = _noisy_problem(seed)
    expected = filter_module.find_label_issues(labels, probs, filter_by="confident_learning")
    ours = np.zeros(len(labels), dtype=bool)
    ours[[i.index for i in find_label_issues(probs, labels) if i.confident]] = True
    assert expected.sum() > 50  # the problem has real issues to agree on
    assert np.array_equal(ours, expected)
    assert np.array_equal(confident_mask(probs, labels), expected)


def test_ensemble_is_the_mean_of_its_members():
    a = _probs([{0: 0.9}, {1: 0.6}])
    b = _probs([{0: 0.5}, {1: 0.2}])
    mean = ensemble_probabilities([a, b])
    assert mean[0, 0] == pytest.approx(0.7) and mean[1, 1] == pytest.approx(0.4)
    assert mean.sum(axis=1) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError):
        ensemble_probabilities([a, b[:1]])
    with pytest.raises(ValueError):
        ensemble_probabilities([])


@pytest.fixture(scope="module")
def flipped_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flipped")
    data_dir = make_data(folder / "data", flipped=FLIPPED)
    checkpoint = train_checkpoint(data_dir, folder / "model.pt")
    return data_dir, checkpoint


@pytest.mark.integration  # trains a model (seconds)
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


@pytest.mark.integration  # trains a model (seconds)
def test_cli_prints_ranking_as_json(flipped_setup, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path))
    data_dir, path = flipped_setup
    code = main(["label-issues", "--checkpoint", str(path), "--data-dir", str(data_dir), "--top", "3"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) == 3 and set(printed[0]) == {"index", "given", "suggested", "score", "confident"}
    assert {row["index"] for row in printed} <= set(FLIPPED)
    assert [row["score"] for row in printed] == sorted((row["score"] for row in printed), reverse=True)


@pytest.mark.integration  # trains a model (seconds)
def test_cli_train_split(flipped_setup, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path))
    data_dir, path = flipped_setup
    assert main(["label-issues", "--checkpoint", str(path), "--data-dir", str(data_dir), "--split", "train"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) == 20 and all(0 <= row["index"] < 600 for row in printed)


def _no_download(root):
    from mnist_core.data import _missing_message
    from mnist_core.errors import DatasetError

    raise DatasetError(_missing_message(root, "no internet in tests"))


@pytest.mark.integration  # trains a model (seconds)
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


@pytest.mark.integration  # trains a model (seconds)
def test_cli_without_checkpoint_uses_the_bundled_model(flipped_setup, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path))
    data_dir, path = flipped_setup
    monkeypatch.setattr("mnist_core.pretrained.PRETRAINED_PATH", path)
    assert main(["label-issues", "--data-dir", str(data_dir), "--top", "5"]) == 0
    bundled = json.loads(capsys.readouterr().out)
    assert main(["label-issues", "--checkpoint", str(path), "--data-dir", str(data_dir), "--top", "5"]) == 0
    assert bundled == json.loads(capsys.readouterr().out) and {row["index"] for row in bundled} == set(FLIPPED)
