"""Two models on the same split, sample by sample: where both are right, where only one is, where they disagree.

Each model's outputs come from `analysis.analyze` (cached per checkpoint content), so comparing
two models already explored costs nothing more than a few array comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from mnist_core.analysis import Analysis
from mnist_core.checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint
from mnist_core.errors import CheckpointError
from mnist_core.evaluate import NUM_CLASSES

BUNDLED = "bundled"
# The agreement table's cells: (A right?, B right?) -> name; the names are also the CLI's JSON keys.
CELLS = {(True, True): "both_right", (True, False): "a_only", (False, True): "b_only", (False, False): "both_wrong"}


def resolve_model(spec: str) -> Checkpoint:
    """A checkpoint from what a user typed: `bundled`, a run directory (its model.pt) or a checkpoint file."""
    if spec == BUNDLED:
        from mnist_core.pretrained import load_pretrained

        return load_pretrained()
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise CheckpointError(
                f"{spec} is a folder without a {CHECKPOINT_NAME}: give a finished run's folder or a checkpoint."
            )
        path = path / CHECKPOINT_NAME
    return load_checkpoint(path)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Models A and B on one split: per-sample correctness of each, and what follows from it."""

    a: Analysis
    b: Analysis

    def __post_init__(self) -> None:
        if len(self.a) != len(self.b) or not np.array_equal(self.a.labels, self.b.labels):
            raise ValueError("both analyses must be of the same split")

    @cached_property
    def a_right(self) -> np.ndarray:
        return self.a.predictions == self.a.labels

    @cached_property
    def b_right(self) -> np.ndarray:
        return self.b.predictions == self.b.labels

    def cell(self, name: str) -> np.ndarray:
        """The mask of one agreement cell: both_right, a_only, b_only or both_wrong."""
        for (a_right, b_right), cell in CELLS.items():
            if cell == name:
                return (self.a_right == a_right) & (self.b_right == b_right)
        raise ValueError(f"cell must be one of {', '.join(CELLS.values())}, got {name!r}")

    def counts(self) -> dict[str, int]:
        """How many samples fall in each agreement cell."""
        return {name: int(self.cell(name).sum()) for name in CELLS.values()}

    def per_class(self) -> dict[str, dict[str, float]]:
        """Each model's accuracy on the samples of each given digit ('0'-'9' -> {'a', 'b'})."""
        result = {}
        for digit in range(NUM_CLASSES):
            members = self.a.labels == digit
            total = int(members.sum())
            result[str(digit)] = {
                "a": float(self.a_right[members].sum() / total) if total else 0.0,
                "b": float(self.b_right[members].sum() / total) if total else 0.0,
            }
        return result

    @cached_property
    def disagreements(self) -> np.ndarray:
        """Indices of the samples where A and B predict different digits, in dataset order."""
        return np.flatnonzero(self.a.predictions != self.b.predictions)

    def caption(self, index: int) -> str:
        """'given 7 · A 2 · B 7' for one sample."""
        return f"given {self.a.labels[index]} · A {self.a.predictions[index]} · B {self.b.predictions[index]}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the four counts, per-digit accuracies and every disagreement {index, given, a, b}."""
        return {
            **self.counts(),
            "per_class": self.per_class(),
            "disagreements": [
                {
                    "index": int(i),
                    "given": int(self.a.labels[i]),
                    "a": int(self.a.predictions[i]),
                    "b": int(self.b.predictions[i]),
                }
                for i in self.disagreements
            ],
        }
