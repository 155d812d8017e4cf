"""A label audit as a run in the run store: the files it writes as it goes, and how they are read back.

    runs/<run_id>/config.json     the fold recipe (TrainConfig fields), "kind": "audit", "folds": K
    runs/<run_id>/progress.json   as a training run's, plus "fold" and "folds"; eta_s is for the whole audit
    runs/<run_id>/folds.csv       one row per finished fold: the metrics columns, test_* measured on its held-out fold
    runs/<run_id>/fold_<k>.pt     fold k's model (a normal checkpoint; 1-based k)
    runs/<run_id>/audit.npz       indices, labels, folds, train_probabilities, test_labels, test_probabilities, folds_done
    runs/<run_id>/verdicts.json   people's verdicts on suspects (mnist_core/verdicts.py)

audit.npz is rewritten after every fold, so a stopped or killed audit keeps the folds it finished.
A run has no model.pt: its fold models are not offered as models to pick.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from mnist_core.audit import AuditConfig, AuditProgress, AuditResult, FoldResult
from mnist_core.checkpoint import Checkpoint, build_meta, load_checkpoint, save_checkpoint
from mnist_core.data import SPLITS, Split
from mnist_core.errors import RunError
from mnist_core.files import write_atomic, write_text_atomic
from mnist_core.label_issues import LabelIssue, find_label_issues
from mnist_core.recorder import PROGRESS_INTERVAL_S, RunRecorder
from mnist_core.runs import KIND_AUDIT, Run, _now
from mnist_core.train import METRIC_COLUMNS

ARRAYS_NAME = "audit.npz"
FOLDS_NAME = "folds.csv"
FOLD_COLUMNS = ("fold",) + METRIC_COLUMNS


def fold_checkpoint_path(run: Run, fold: int) -> Path:
    """Where fold `fold`'s (1-based) model is saved."""
    return run.path / f"fold_{fold}.pt"


class AuditRecorder(RunRecorder):
    """The audit's side of the run store: RunRecorder's progress and failure handling, plus folds and probabilities."""

    def __init__(self, run: Run, config: AuditConfig, train_split: Split, test_split: Split):
        super().__init__(run, config, train_split)
        self.test_labels = test_split.labels.numpy()
        self._fold_rows: list[dict[str, float]] = []

    def start(self) -> None:
        """Claim the run, as a trainer does, with the fold counters in progress.json."""
        super().start()
        self._state.update(fold=0, folds=self.config.folds)
        self._write_progress()

    def on_audit_batch(self, progress: AuditProgress) -> None:
        """After every batch of every fold: progress.json at most every PROGRESS_INTERVAL_S."""
        self._state.update(fold=progress.fold, folds=progress.folds)
        batch = progress.batch
        self._state.update(
            epoch=batch.epoch,
            batch=batch.batch,
            batches=batch.batches,
            samples_per_s=round(batch.samples_per_s, 1),
            elapsed_s=round(progress.elapsed_s, 2),
            eta_s=round(progress.eta_s, 1),
            loss=round(batch.loss, 5),
        )
        if self._due() or batch.batch == batch.batches:
            self._write_progress()

    def on_fold(self, fold: FoldResult, result: AuditResult) -> None:
        """After each fold: its checkpoint, its metrics row, and the probabilities found so far."""
        meta = build_meta(
            run_id=self.run.id,
            config=self.config.train.to_dict(),
            audit_fold=fold.fold,
            audit_folds=self.config.folds,
            epoch=fold.metrics.epoch,
            data_checksum=self.data_checksum,
            train_size=int((result.folds != fold.fold - 1).sum()),
        )
        save_checkpoint(fold_checkpoint_path(self.run, fold.fold), fold.model, meta)
        self._fold_rows.append({"fold": fold.fold, **fold.metrics.to_row()})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FOLD_COLUMNS)
        writer.writeheader()
        writer.writerows(self._fold_rows)
        write_text_atomic(self.run.path / FOLDS_NAME, buffer.getvalue())
        self._save_arrays(result, folds_done=len(result.fold_results))
        self._state.update(folds_done=len(result.fold_results))
        self._write_progress()

    def finish_audit(self, result: AuditResult) -> None:
        """Mark the audit finished or stopped."""
        self._state.update(status=result.status, finished_at=_now(), elapsed_s=round(result.seconds, 2), eta_s=0.0)
        self._write_progress()

    def _due(self) -> bool:
        return time.monotonic() - self._last_write >= PROGRESS_INTERVAL_S

    def _save_arrays(self, result: AuditResult, folds_done: int) -> None:
        arrays = {
            "indices": result.indices.astype(np.int64),
            "labels": result.labels.astype(np.int64),
            "folds": result.folds.astype(np.int64),
            "train_probabilities": result.train_probabilities.astype(np.float32),
            "test_labels": self.test_labels.astype(np.int64),
            "test_probabilities": result.test_probabilities.astype(np.float32),
            "folds_done": np.array(folds_done),
        }
        write_atomic(self.run.path / ARRAYS_NAME, lambda handle: np.savez(handle, **arrays), durable=True)


@dataclass(frozen=True, eq=False)
class AuditData:
    """A finished audit's arrays, ready to rank: per split, the given labels and the out-of-sample probabilities."""

    run: Run
    indices: np.ndarray  # audited training indices
    labels: np.ndarray
    folds: np.ndarray
    train_probabilities: np.ndarray
    test_labels: np.ndarray
    fold_test_probabilities: np.ndarray  # (K, N_test, 10)

    @cached_property
    def test_probabilities(self) -> np.ndarray:
        """The test set scored by the mean of the K fold models."""
        return self.fold_test_probabilities.mean(axis=0)

    def split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indices into the split, given labels, probabilities) of the audited samples of `split`."""
        if split == "train":
            return self.indices, self.labels, self.train_probabilities
        if split == "test":
            return np.arange(len(self.test_labels)), self.test_labels, self.test_probabilities
        raise RunError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")

    def issues(self, split: str, top: int | None = None) -> list[LabelIssue]:
        """The split's samples ranked by confident learning on the audit's probabilities; indices are the split's own."""
        indices, labels, probabilities = self.split_arrays(split)
        ranked = find_label_issues(probabilities, labels, top=top)
        return [LabelIssue(int(indices[i.index]), i.given, i.suggested, i.score, i.confident) for i in ranked]

    def fold_of(self, index: int) -> int | None:
        """The fold (1-based) that held training sample `index` out, or None when it was not audited."""
        position = np.searchsorted(self.indices, index)
        if position < len(self.indices) and self.indices[position] == index:
            return int(self.folds[position]) + 1
        return None

    def fold_models(self) -> list[Checkpoint]:
        """The K fold models, fold 1 first."""
        return [load_checkpoint(fold_checkpoint_path(self.run, k)) for k in range(1, len(self.fold_test_probabilities) + 1)]


def load_audit(run: Run) -> AuditData:
    """A finished audit's arrays; a RunError that says why when the run is not a finished audit."""
    if run.kind != KIND_AUDIT:
        raise RunError(f"{run.path.name} is a training run, not a label audit: start one with `python -m mnist_core audit`.")
    status = run.status()
    if status != "finished":
        raise RunError(f"The audit {run.path.name} is {status}, not finished: only a finished audit scores every sample.")
    try:
        with np.load(run.path / ARRAYS_NAME) as arrays:
            data = AuditData(
                run=run,
                indices=arrays["indices"],
                labels=arrays["labels"],
                folds=arrays["folds"],
                train_probabilities=arrays["train_probabilities"],
                test_labels=arrays["test_labels"],
                fold_test_probabilities=arrays["test_probabilities"],
            )
    except (OSError, KeyError, ValueError) as exc:
        raise RunError(f"The audit {run.path.name} has no readable {ARRAYS_NAME}; run the audit again.") from exc
    if np.isnan(data.train_probabilities).any() or len(data.fold_test_probabilities) == 0:
        raise RunError(f"The audit {run.path.name} is incomplete ({ARRAYS_NAME} lacks folds); run the audit again.")
    return data


def finished_audits(store) -> list[Run]:
    """The store's finished audits, newest first."""
    return [run for run in store.list() if run.kind == KIND_AUDIT and run.status() == "finished"]


def fold_probabilities(models: list[Checkpoint], image) -> np.ndarray:
    """Each fold model's probabilities (K, 10) for one image (1, 1, 28, 28): milliseconds, so computed on demand."""
    from mnist_core.evaluate import predict_logits

    rows = [predict_logits(checkpoint.model, image).softmax(dim=1)[0].numpy() for checkpoint in models]
    return np.stack(rows)


@dataclass(frozen=True)
class AuditBars:
    """An audit's progress.json as three bars: folds, epochs of the current fold, batches of the current epoch."""

    fold: tuple[float, str]
    epoch: tuple[float, str]
    batch: tuple[float, str]


def audit_bars(progress: dict) -> AuditBars:
    """The bars' fractions and texts; robust to a queued run's sparse progress."""

    def whole(key: str) -> int:
        value = progress.get(key)
        return max(int(value), 0) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    folds, fold = whole("folds"), whole("fold")
    epochs, epoch = whole("epochs"), whole("epoch")
    batches, batch = whole("batches"), whole("batch")
    in_epoch = min(batch / batches, 1.0) if batches else 0.0
    in_fold = min(((epoch - 1) + in_epoch) / epochs, 1.0) if epochs and epoch else 0.0
    overall = min(((fold - 1) + in_fold) / folds, 1.0) if folds and fold else 0.0
    if progress.get("status") == "finished":
        overall = in_fold = in_epoch = 1.0
    if progress.get("status") == "queued":
        return AuditBars((0.0, "Queued: starting the audit and loading MNIST…"), (0.0, "Epoch –"), (0.0, "Batch –"))
    return AuditBars(
        (overall, f"Fold {fold} of {folds}" if fold else f"Fold – of {folds or '–'}"),
        (in_fold, f"Epoch {epoch} of {epochs}" if epoch else "Epoch –"),
        (in_epoch, f"Batch {batch} of {batches}" if batches else "Batch –"),
    )
