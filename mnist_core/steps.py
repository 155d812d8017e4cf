"""Training curves between epochs: the mean training loss and accuracy of every window of batches.

    RUN/steps.csv   step (batches done in the run), epoch (position in epochs, e.g. 2.25), loss, acc

The trainer appends a row every `EVERY` batches and at each epoch's last batch; the Train page
draws them smoothed as TensorBoard does (`smooth`), with the per-epoch test points on the same axes.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from mnist_core.files import write_text_atomic

FILE_NAME = "steps.csv"
COLUMNS = ("step", "epoch", "loss", "acc")
# 32 batches of 64 is a point every ~2,000 images: ~30 points an epoch, a few hundred for a seed run.
EVERY = 32


class StepWindow:
    """Accumulates batches; `add` returns a row when a window closes."""

    def __init__(self, every: int = EVERY):
        self.every = every
        self.step = 0
        self._loss, self._acc, self._count = 0.0, 0.0, 0

    def add(self, epoch: int, batch: int, batches: int, loss: float, acc: float) -> dict[str, float] | None:
        """One batch's loss and accuracy; a row of means when `every` batches (or the epoch) are done."""
        self.step += 1
        self._loss, self._acc, self._count = self._loss + loss, self._acc + acc, self._count + 1
        if self._count < self.every and batch < batches:
            return None
        row = {
            "step": self.step,
            "epoch": round(epoch - 1 + batch / max(batches, 1), 4),
            "loss": self._loss / self._count,
            "acc": self._acc / self._count,
        }
        self._loss, self._acc, self._count = 0.0, 0.0, 0
        return row


def write(path: str | Path, rows: list[dict[str, float]]) -> None:
    """Replace steps.csv atomically and durably (a run file)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def read(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of a run's steps.csv (none for an older run or a damaged file); damaged rows are skipped."""
    try:
        text = (Path(run_dir) / FILE_NAME).read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            parsed = {key: float(row[key]) for key in COLUMNS}
        except (KeyError, TypeError, ValueError):
            continue
        if all(math.isfinite(v) for v in parsed.values()):
            rows.append(parsed)
    return rows


def smooth(values: list[float], weight: float = 0.6) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled to 0."""
    smoothed, last = [], 0.0
    for i, value in enumerate(values):
        last = last * weight + (1 - weight) * value
        smoothed.append(last / (1 - weight ** (i + 1)))
    return smoothed
