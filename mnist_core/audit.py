"""The label audit: K-fold cross-validation that gives every training image an out-of-sample probability.

Confident learning (mnist_core/label_issues.py) needs probabilities from a model that
never saw the sample: a model has partly memorized the labels of its own training
images, right or wrong. So the (possibly subset) training set is split into K
stratified folds; fold f's model trains on the other K - 1 folds with the usual loop
(mnist_core.train.train) and predicts fold f. Every audited image is predicted by
exactly one model that did not train on it, and the test set, which no fold model
saw, gets the mean of the K models' probabilities.

An audit is a run of kind "audit" in the run store (see AuditConfig and
mnist_core/audit_run.py); this module is the computation, usable without a run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mnist_core.config import TrainConfig, _check_int
from mnist_core.data import Split, subset_indices
from mnist_core.errors import ConfigError
from mnist_core.evaluate import NUM_CLASSES, evaluate
from mnist_core.model import MnistCNN
from mnist_core.runs import KIND_AUDIT
from mnist_core.train import BatchProgress, EpochMetrics, train

KIND = KIND_AUDIT
DEFAULT_FOLDS = 5
MAX_FOLDS = 20
# The default fold recipe: one epoch of the `fast` preset (99.1% test accuracy on the full set). Five of them on
# 48,000 images each are the whole cost of an audit; bench/audit_speed.py measures it.
DEFAULT_PRESET = "fast"


@dataclass(frozen=True)
class AuditConfig:
    """How to audit: the recipe every fold model trains with, and the number of folds."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig.from_preset(DEFAULT_PRESET))
    folds: int = DEFAULT_FOLDS

    def __post_init__(self) -> None:
        _check_int("folds", self.folds, 2, MAX_FOLDS)
        subset = self.train.train_subset
        if subset is not None and subset < 10 * self.folds:
            raise ConfigError(
                "train_subset", f"is {subset}, too few to split into {self.folds} folds; use at least {10 * self.folds}."
            )

    @property
    def epochs(self) -> int:
        """Epochs per fold model."""
        return self.train.epochs

    @property
    def train_subset(self) -> int | None:
        """How many training images are audited (None: all of them)."""
        return self.train.train_subset

    @property
    def kind(self) -> str:
        """The run kind an audit is stored as."""
        return KIND

    def to_dict(self) -> dict[str, Any]:
        """config.json of an audit run: the fold recipe's fields, plus its kind and folds."""
        return {**self.train.to_dict(), "kind": KIND, "folds": self.folds}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AuditConfig:
        """Read config.json of an audit run (validated like a TrainConfig, plus kind and folds)."""
        if not isinstance(values, dict):
            raise ConfigError("config", f"must be a JSON object, got {type(values).__name__}.")
        values = dict(values)
        kind = values.pop("kind", None)
        if kind != KIND:
            raise ConfigError("kind", f"must be {KIND!r} for an audit, got {kind!r}.")
        folds = values.pop("folds", DEFAULT_FOLDS)
        return cls(TrainConfig.from_dict(values), folds)

    def to_args(self) -> list[str]:
        """The `audit` command-line flags that reproduce this config (how the launcher starts an audit)."""
        args = ["--preset", self.train.preset or "seed", "--folds", str(self.folds)]
        args += ["--epochs", str(self.train.epochs), "--seed", str(self.train.seed)]
        if self.train.train_subset is not None:
            args += ["--train-subset", str(self.train.train_subset)]
        return args

    def replace(self, **changes: Any) -> AuditConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def fold_assignment(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each sample: stratified (each class spread evenly), seeded, sizes within one."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    # Each class's samples in a random order, the classes one after another; dealing that sequence round-robin
    # gives every fold floor or ceil of each class's share, and of the total.
    order = np.concatenate([rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)])
    assignment = np.empty(len(labels), dtype=np.int64)
    assignment[order] = np.arange(len(order)) % folds
    return assignment


@dataclass(frozen=True)
class AuditProgress:
    """Where an audit is, after every batch: the fold, and the fold model's own BatchProgress."""

    fold: int  # 1-based
    folds: int
    batch: BatchProgress
    elapsed_s: float
    eta_s: float  # for the whole audit


@dataclass
class FoldResult:
    """One finished fold: its model, its held-out samples' probabilities, and its test-set probabilities."""

    fold: int  # 1-based
    model: MnistCNN
    held_out: np.ndarray  # positions (into the audited samples) this model predicted
    probabilities: np.ndarray  # (len(held_out), 10)
    test_probabilities: np.ndarray  # (N_test, 10)
    metrics: EpochMetrics  # of the last epoch; test_* are measured on the held-out fold


@dataclass
class AuditResult:
    """What an audit leaves: the audited indices, their folds, and the out-of-sample probabilities found so far."""

    status: str  # "finished" or "stopped"
    indices: np.ndarray  # audited training indices (torchvision's order)
    labels: np.ndarray  # their given labels
    folds: np.ndarray  # fold (0-based) of each audited sample
    train_probabilities: np.ndarray  # (n, 10); NaN for samples whose fold did not finish
    test_probabilities: np.ndarray  # (K_done, N_test, 10), one row per finished fold
    fold_results: list[FoldResult]
    seconds: float


def audited_indices(train_split: Split, config: AuditConfig) -> np.ndarray:
    """The training indices an audit covers: all of them, or the fixed subset `train_subset` names."""
    if config.train.train_subset is not None and config.train.train_subset > len(train_split):
        raise ConfigError(
            "train_subset", f"is {config.train.train_subset} but the training set has only {len(train_split)} images."
        )
    subset = subset_indices(len(train_split), config.train.train_subset)
    return np.arange(len(train_split)) if subset is None else subset.numpy()


def run_audit(
    config: AuditConfig,
    train_split: Split,
    test_split: Split,
    on_batch: Callable[[AuditProgress], None] | None = None,
    on_fold: Callable[[FoldResult, AuditResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AuditResult:
    """Train one model per fold on the other folds; `should_stop` is polled between batches (a stop ends the audit)."""
    indices = audited_indices(train_split, config)
    labels = train_split.labels.numpy()[indices]
    folds = fold_assignment(labels, config.folds, config.train.seed)
    recipe = config.train.replace(train_subset=None)
    batches_per_fold = [config.train.epochs * math.ceil(int((folds != f).sum()) / recipe.batch_size) for f in range(config.folds)]
    total_batches = sum(batches_per_fold)
    result = AuditResult(
        status="finished",
        indices=indices,
        labels=labels,
        folds=folds,
        train_probabilities=np.full((len(indices), NUM_CLASSES), np.nan, dtype=np.float32),
        test_probabilities=np.empty((0, len(test_split), NUM_CLASSES), dtype=np.float32),
        fold_results=[],
        seconds=0.0,
    )
    started = time.perf_counter()
    for f in range(config.folds):
        done_before = sum(batches_per_fold[:f])
        fit = indices[folds != f]
        held = np.flatnonzero(folds == f)
        fit_split = _part(train_split, fit, f"fold{f + 1}-fit")
        held_split = _part(train_split, indices[held], f"fold{f + 1}-held")

        def report(progress: BatchProgress, fold=f + 1, done_before=done_before) -> None:
            if on_batch is None:
                return
            elapsed = time.perf_counter() - started
            done = done_before + (progress.epoch - 1) * progress.batches + progress.batch
            on_batch(AuditProgress(fold, config.folds, progress, elapsed, elapsed / done * (total_batches - done)))

        # Each fold model gets its own seed, so the K models are K different draws, not K copies of one start.
        trained = train(recipe.replace(seed=config.train.seed + f), fit_split, held_split, report, None, should_stop)
        if trained.status == "stopped":
            result.status = "stopped"
            break
        fold = FoldResult(
            fold=f + 1,
            model=trained.model,
            held_out=held,
            probabilities=evaluate(trained.model, held_split.images, held_split.labels).probabilities,
            test_probabilities=evaluate(trained.model, test_split.images, test_split.labels).probabilities,
            metrics=trained.final,
        )
        result.train_probabilities[held] = fold.probabilities
        result.test_probabilities = np.concatenate([result.test_probabilities, fold.test_probabilities[None]])
        result.fold_results.append(fold)
        result.seconds = time.perf_counter() - started
        if on_fold is not None:
            on_fold(fold, result)
    result.seconds = time.perf_counter() - started
    return result


def _part(split: Split, indices: np.ndarray, name: str) -> Split:
    index = torch.from_numpy(np.asarray(indices, dtype=np.int64))
    return Split(name, split.images[index], split.labels[index], f"{split.checksum}:{name}")


def plant_label_errors(labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels with `count` randomly chosen ones changed to another digit, the changed positions): errors whose
    truth is known, to measure an audit with (bench/audit_speed.py)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels).copy()
    chosen = np.sort(rng.choice(len(labels), count, replace=False))
    labels[chosen] = (labels[chosen] + rng.integers(1, NUM_CLASSES, count)) % NUM_CLASSES
    return labels, chosen


def with_labels(split: Split, labels: np.ndarray) -> Split:
    """The same images under other labels (planted errors, or a cleaned set)."""
    tensor = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return Split(split.name, split.images, tensor, f"{split.checksum}:relabelled")
