"""What the dashboard shows about runs, models and the dataset, computed without Streamlit.

The pages turn these values into widgets; the arithmetic (fractions, durations,
best-of, which images to show) lives here so it is tested once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mnist_core.data import Split
from mnist_core.errors import RunError
from mnist_core.evaluate import NUM_CLASSES
from mnist_core.gallery import enlarge
from mnist_core.runs import ACTIVE, Run

TABLE_COLUMNS = (
    "id", "name", "kind", "status", "preset", "epochs", "batch_size", "lr", "optimizer", "schedule", "augment",
    "train_images", "best_test_acc", "final_test_acc", "duration_s", "started_at", "error",
)  # fmt: skip


def format_duration(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'; an unknown duration is '–'."""
    if seconds is None or not np.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass(frozen=True)
class LiveProgress:
    """A run's progress.json, as the two progress bars and the figures beside them."""

    status: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    overall: float  # share of all batches of all epochs done, 0..1
    in_epoch: float  # share of the current epoch's batches done, 0..1
    samples_per_s: float | None
    elapsed_s: float | None
    eta_s: float | None
    error: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def overall_text(self) -> str:
        if self.status == "queued":
            return "Queued: starting the trainer and loading MNIST…"
        return f"Epoch {self.epoch} of {self.epochs}"

    @property
    def in_epoch_text(self) -> str:
        if not self.batches:
            return "Batch –"
        return f"Batch {self.batch} of {self.batches}"


def live_progress(progress: dict[str, Any]) -> LiveProgress:
    """Turn a progress.json dict (Run.progress()) into bar fractions; robust to a queued or failed run's sparse dict."""
    status = str(progress.get("status", "failed"))
    epochs = max(int(progress.get("epochs") or 0), 0)
    epoch = min(max(int(progress.get("epoch") or 0), 0), epochs) if epochs else 0
    batches = max(int(progress.get("batches") or 0), 0)
    batch = min(max(int(progress.get("batch") or 0), 0), batches)
    in_epoch = batch / batches if batches else 0.0
    if status == "finished":
        overall, in_epoch = 1.0, 1.0
    elif epochs and epoch:
        overall = min(((epoch - 1) + in_epoch) / epochs, 1.0)
    else:
        overall = 0.0

    def number(key: str) -> float | None:
        value = progress.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    return LiveProgress(
        status=status,
        epoch=epoch,
        epochs=epochs,
        batch=batch,
        batches=batches,
        overall=overall,
        in_epoch=in_epoch,
        samples_per_s=number("samples_per_s"),
        elapsed_s=number("elapsed_s"),
        eta_s=number("eta_s"),
        error=progress.get("error"),
    )


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def run_row(run: Run) -> dict[str, Any]:
    """One run as a flat row: its recipe, how far it got, its best and final test accuracy."""
    progress = run.progress()
    metrics = run.metrics()
    row: dict[str, Any] = dict.fromkeys(TABLE_COLUMNS)
    row.update(id=run.id, name=run.name, status=progress.get("status", "failed"), error=progress.get("error"))
    try:
        config = run.config()
    except RunError as exc:
        row["error"] = row["error"] or str(exc)
        config = None
    if config is not None:
        row.update(
            preset=config.preset or "custom",
            batch_size=config.batch_size,
            lr=config.lr,
            optimizer=config.optimizer,
            schedule=config.schedule,
            augment=config.augment,
        )
    total = (config.epochs if config else None) or progress.get("epochs")
    row["epochs"] = f"{len(metrics)}/{total}" if total else str(len(metrics))
    row["epochs_done"], row["epochs_planned"] = len(metrics), total
    row["train_images"] = progress.get("train_size") or (config.train_subset if config else None)
    accuracies = [r["test_acc"] for r in metrics]
    row["best_test_acc"] = max(accuracies) if accuracies else None
    row["final_test_acc"] = progress.get("test_acc", accuracies[-1] if accuracies else None)
    row["duration_s"] = progress.get("elapsed_s")
    row["kind"] = run.kind
    if row["kind"] == "audit":  # an audit's unit of progress is the fold; its accuracies are not a model's
        row["epochs"] = f"{progress.get('folds_done', 0)}/{progress.get('folds', '?')} folds"
        row["best_test_acc"] = row["final_test_acc"] = None
    row["started_at"] = _parse_time(progress.get("started_at") or progress.get("queued_at"))
    return row


def run_listing(run: Run) -> dict[str, Any]:
    """One run as `mnist-lab runs --json` prints it: id, kind, status, epochs done of planned, accuracies, start time."""
    row = run_row(run)
    started = row["started_at"]
    return {
        "id": row["id"],
        "kind": row["kind"],
        "status": row["status"],
        "epochs_done": row["epochs_done"],
        "epochs_planned": row["epochs_planned"],
        "final_test_acc": row["final_test_acc"],
        "best_test_acc": row["best_test_acc"],
        "started_at": started.isoformat() if started else None,
    }


def runs_table(runs: list[Run]) -> pd.DataFrame:
    """All runs as a table with TABLE_COLUMNS, in the order given (RunStore.list(): newest first)."""
    frame = pd.DataFrame(
        [{k: v for k, v in run_row(run).items() if k in TABLE_COLUMNS} for run in runs], columns=list(TABLE_COLUMNS)
    )
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


def per_class_accuracy(row: dict[str, float]) -> list[float]:
    """The ten per-digit test accuracies of one metrics row."""
    return [row[f"test_acc_{d}"] for d in range(NUM_CLASSES)]


def metrics_csv(run: Run) -> bytes | None:
    """The run's metrics.csv as bytes for a download, or None when no epoch has finished yet."""
    try:
        return run.metrics_path.read_bytes()
    except OSError:
        return None


@dataclass(frozen=True)
class ModelCard:
    """What Home shows about a model: accuracy, per-digit accuracy, and how and when it was trained."""

    test_acc: float | None
    per_class_acc: list[float] | None
    trained_at: datetime | None
    epoch: int | None
    recipe: str
    train_images: int | None
    run_id: str | None
    partial_epoch: bool


def describe_recipe(config: dict[str, Any]) -> str:
    """A one-line recipe, e.g. 'seed preset · Adam lr 0.001 · batch 64 · 10 epochs · constant lr'."""
    if not config:
        return "unknown recipe"
    parts = [f"{config.get('preset') or 'custom'} preset"]
    if config.get("optimizer"):
        parts.append(f"{'Adam' if config['optimizer'] == 'adam' else config['optimizer'].upper()} lr {config.get('lr'):g}")
    if config.get("batch_size"):
        parts.append(f"batch {config['batch_size']}")
    if config.get("epochs"):
        parts.append(f"{config['epochs']} epochs")
    if config.get("schedule"):
        parts.append(f"{config['schedule']} lr schedule")
    if config.get("label_smoothing"):
        parts.append(f"label smoothing {config['label_smoothing']:g}")
    if config.get("augment"):
        parts.append("augmented")
    if config.get("precision") == "bf16":
        parts.append("bf16")
    return " · ".join(parts)


def model_card(meta: dict[str, Any]) -> ModelCard:
    """Read a checkpoint's metadata (checkpoint.build_meta) into a card; missing fields stay None."""
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    per_class = meta.get("per_class_acc")
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    return ModelCard(
        test_acc=metrics.get("test_acc"),
        per_class_acc=[float(v) for v in per_class] if isinstance(per_class, list) and len(per_class) == NUM_CLASSES else None,
        trained_at=_parse_time(meta.get("created_at")),
        epoch=meta.get("epoch"),
        recipe=describe_recipe(config),
        train_images=meta.get("train_size"),
        run_id=meta.get("run_id"),
        partial_epoch=bool(meta.get("partial_epoch")),
    )


def sample_grid(split: Split, per_class: int = 10, scale: int = 2, gap: int = 2) -> np.ndarray:
    """The first `per_class` images of each digit as one uint8 picture (white on black, as the model sees them), a row per digit."""
    pixels = split.raw().numpy()
    labels = split.labels.numpy()
    tile = 28 * scale
    grid = np.full((NUM_CLASSES * (tile + gap) - gap, per_class * (tile + gap) - gap), 255, dtype=np.uint8)
    for digit in range(NUM_CLASSES):
        for column, index in enumerate(np.flatnonzero(labels == digit)[:per_class]):
            image = enlarge(pixels[index], scale)  # the browser would blur a 28-pixel image into mush
            top, left = digit * (tile + gap), column * (tile + gap)
            grid[top : top + tile, left : left + tile] = image
    return grid


def outcome_figures(rows: list[dict[str, float]]) -> list[tuple[str, str]]:
    """A run's outcome as (label, value) pairs from its metrics rows: the last epoch's test accuracy, the best one,
    the last test loss and train accuracy; none before the first epoch ends."""
    if not rows:
        return []
    final = rows[-1]
    return [
        ("Test accuracy", f"{final['test_acc']:.2%}"),
        ("Best test accuracy", f"{max(row['test_acc'] for row in rows):.2%}"),
        ("Test loss", f"{final['test_loss']:.4f}"),
        ("Train accuracy", f"{final['train_acc']:.2%}"),
    ]
