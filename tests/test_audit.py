"""The label audit's library: folds, its config, an audit in this process, and planted errors found at small scale."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_core.audit import AuditConfig, fold_assignment, run_audit
from mnist_core.audit_run import AuditRecorder, load_audit
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.errors import ConfigError, RunError
from mnist_core.runs import RunStore
from mnist_core.testing import synthetic_digits, write_idx

# One epoch at batch 16 already learns the synthetic digits: about a second per audit of 600 images.
QUICK = TrainConfig(epochs=1, batch_size=16, lr=3e-3, device="cpu", threads=1)


def test_folds_are_stratified_disjoint_covering_and_seeded():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 1003)
    folds = fold_assignment(labels, 5, seed=7)
    assert folds.shape == labels.shape and set(folds.tolist()) == {0, 1, 2, 3, 4}  # every sample in exactly one fold
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1
    for digit in range(10):
        per_fold = np.bincount(folds[labels == digit], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1, (digit, per_fold)
    assert np.array_equal(folds, fold_assignment(labels, 5, seed=7))
    assert not np.array_equal(folds, fold_assignment(labels, 5, seed=8))


def test_config_round_trips_through_config_json_and_flags():
    config = AuditConfig(TrainConfig.from_preset("fast", seed=3, train_subset=2000), folds=4)
    values = json.loads(json.dumps(config.to_dict()))
    assert values["kind"] == "audit" and values["folds"] == 4
    assert AuditConfig.from_dict(values) == config
    assert config.to_args() == ["--preset", "fast", "--folds", "4", "--epochs", "1", "--seed", "3", "--train-subset", "2000"]
    with pytest.raises(ConfigError, match="folds"):
        AuditConfig(folds=1)
    with pytest.raises(ConfigError, match="train_subset"):
        AuditConfig(TrainConfig(train_subset=30), folds=5)
    with pytest.raises(ConfigError, match="kind"):
        AuditConfig.from_dict(TrainConfig().to_dict())


def _flipped_data(folder, n=600, flips=20, seed=5):
    """Synthetic train digits with `flips` labels changed to another digit; returns the data folder and the flips."""
    images, labels = synthetic_digits(n, seed=1)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, flips, replace=False))
    wrong = labels.copy()
    wrong[chosen] = (labels[chosen] + rng.integers(1, 10, flips)) % 10
    raw = folder / "MNIST" / "raw"
    write_idx(raw, "train", images, wrong)
    write_idx(raw, "test", *synthetic_digits(200, seed=2))
    return folder, set(chosen.tolist())


@pytest.mark.integration  # trains a model (seconds)
def test_every_training_image_gets_an_out_of_sample_probability_and_planted_errors_rank_first(tmp_path):
    data_dir, flipped = _flipped_data(tmp_path / "data")
    train_split, test_split = load_split("train", data_dir), load_split("test", data_dir)
    config = AuditConfig(QUICK, folds=2)
    result = run_audit(config, train_split, test_split)
    assert result.status == "finished" and len(result.fold_results) == 2
    assert not np.isnan(result.train_probabilities).any()
    assert result.test_probabilities.shape == (2, 200, 10)
    for fold in result.fold_results:  # each model predicted exactly its own fold
        assert set(fold.held_out.tolist()) == set(np.flatnonzero(result.folds == fold.fold - 1).tolist())

    store = RunStore(tmp_path / "runs")
    run = store.create(config, "audit")
    recorder = AuditRecorder(run, config, train_split, test_split)
    recorder.start()
    for fold in result.fold_results:
        recorder.on_fold(fold, result)
    recorder.finish_audit(result)
    assert run.kind == "audit" and run.config() == QUICK and run.audit_config() == config
    audit = load_audit(run)
    top = audit.issues("train", top=2 * len(flipped))
    found = flipped & {issue.index for issue in top}
    assert len(found) >= 0.9 * len(flipped), sorted(flipped - found)
    assert all(issue.given != issue.suggested for issue in top)
    assert len(audit.issues("test", top=500)) == 200
    assert [checkpoint.meta["audit_fold"] for checkpoint in audit.fold_models()] == [1, 2]


@pytest.mark.integration  # trains a model (seconds)
def test_a_subset_audit_reports_indices_of_the_full_split(tmp_path):
    data_dir, _ = _flipped_data(tmp_path / "data")
    train_split, test_split = load_split("train", data_dir), load_split("test", data_dir)
    result = run_audit(AuditConfig(QUICK.replace(train_subset=300), folds=2), train_split, test_split)
    assert len(result.indices) == 300 and result.indices.max() < 600 and len(set(result.indices.tolist())) == 300
    assert np.array_equal(result.labels, train_split.labels.numpy()[result.indices])


def test_a_stopped_audit_cannot_be_ranked(tmp_path):
    data_dir, _ = _flipped_data(tmp_path / "data")
    train_split, test_split = load_split("train", data_dir), load_split("test", data_dir)
    config = AuditConfig(QUICK, folds=2)
    result = run_audit(config, train_split, test_split, should_stop=lambda: True)
    assert result.status == "stopped" and result.fold_results == []
    run = RunStore(tmp_path / "runs").create(config, "audit")
    recorder = AuditRecorder(run, config, train_split, test_split)
    recorder.start()
    recorder.finish_audit(result)
    assert run.status() == "stopped"
    with pytest.raises(RunError, match="stopped, not finished"):
        load_audit(run)


def test_a_training_run_is_kind_train_and_old_runs_without_kind_too(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.create(TrainConfig(epochs=1), "plain")
    assert json.loads(run.config_path.read_text())["kind"] == "train" and run.kind == "train"
    old = json.loads(run.config_path.read_text())
    del old["kind"]
    run.config_path.write_text(json.dumps(old))
    assert run.kind == "train" and run.config() == TrainConfig(epochs=1)
    with pytest.raises(RunError, match="not a label audit"):
        load_audit(run)
