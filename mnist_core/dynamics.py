"""Training dynamics: each test sample's probabilities after every epoch, and what they say about it.

A run's trainer leaves `test_probabilities.npy`: float16, shape (epochs completed,
N test images, 10), row e holding the softmax of the model after epoch e + 1. From it
and the given labels this module answers, per sample:

- learned late: first classified right at epoch >= k (1-based), whatever happens after;
- forgotten: classified right at some epoch and wrong at a later one (a forgetting event,
  Toneva et al., 2019);
- never learned: wrong after every epoch;
- flips: how often the predicted class changes from one epoch to the next;
- cartography (Swayamdipta et al., 2020): the mean ("confidence") and the standard deviation
  ("variability") over epochs of the probability of the given label.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from mnist_core.evaluate import NUM_CLASSES
from mnist_core.files import write_atomic

FILE_NAME = "test_probabilities.npy"
CATEGORIES = ("learned late", "forgotten", "never learned", "flipped")


def to_float16(probabilities: np.ndarray) -> np.ndarray:
    """(N, 10) probabilities as float16 with each row's argmax kept (rounding could tie two classes otherwise)."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    small = probabilities.astype(np.float16)
    predicted = probabilities.argmax(axis=1)
    moved = np.flatnonzero(small.argmax(axis=1) != predicted)
    # A tie after rounding goes to the lower class; one step up makes the true winner the strict maximum again.
    small[moved, predicted[moved]] = np.nextafter(small[moved, predicted[moved]], np.float16(1))
    return small


def write(path: str | Path, epochs: list[np.ndarray]) -> Path:
    """Replace the dynamics file with the stacked (E, N, 10) float16 rows of `epochs`, atomically and durably."""
    stacked = np.stack(epochs).astype(np.float16, copy=False)
    return write_atomic(path, lambda handle: np.save(handle, stacked, allow_pickle=False), durable=True)


def read(path: str | Path, n: int | None = None) -> np.ndarray | None:
    """The stored (E, N, 10) array as float32, or None when it is missing, unreadable, or not for `n` samples."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[2] != NUM_CLASSES or (n is not None and array.shape[1] != n):
        return None
    return array.astype(np.float32)


def keep_epochs(path: str | Path, epochs: int) -> None:
    """Cut the file to its first `epochs` slices, the epochs whose metrics row landed.

    The trainer writes an epoch's probabilities before its metrics row, so a trainer killed between the two
    leaves one slice more than metrics.csv has rows; a run marked failed is cut back to what it completed.
    """
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return
    if array.ndim != 3 or len(array) <= epochs:
        return
    if epochs == 0:
        Path(path).unlink(missing_ok=True)
    else:
        write(path, list(array[:epochs]))


@dataclass(frozen=True, eq=False)
class Dynamics:
    """Per-epoch probabilities (E, N, 10) of one run on one split and the given labels (N,)."""

    probabilities: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.probabilities.ndim != 3 or self.probabilities.shape[1] != len(self.labels):
            raise ValueError(f"probabilities {self.probabilities.shape} do not match {len(self.labels)} labels")

    @property
    def epochs(self) -> int:
        return self.probabilities.shape[0]

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def predictions(self) -> np.ndarray:
        """(E, N) predicted class after each epoch."""
        return self.probabilities.argmax(axis=2)

    @cached_property
    def correct(self) -> np.ndarray:
        """(E, N) whether each epoch's prediction equals the given label."""
        return self.predictions == self.labels[None, :]

    @cached_property
    def given_probability(self) -> np.ndarray:
        """(E, N) the probability of the given label after each epoch."""
        return np.take_along_axis(self.probabilities, self.labels[None, :, None].astype(np.int64), axis=2)[:, :, 0]

    @cached_property
    def first_right(self) -> np.ndarray:
        """(N,) the first epoch (1-based) at which each sample was right, 0 for never."""
        ever = self.correct.any(axis=0)
        return np.where(ever, self.correct.argmax(axis=0) + 1, 0)

    def learned_late(self, k: int) -> np.ndarray:
        """(N,) mask: first right at epoch >= k."""
        return self.first_right >= max(int(k), 1)

    @cached_property
    def forgotten(self) -> np.ndarray:
        """(N,) mask: right at some epoch, wrong at a later one."""
        right_before = np.logical_or.accumulate(self.correct, axis=0)[:-1]
        return (right_before & ~self.correct[1:]).any(axis=0)

    @cached_property
    def never_learned(self) -> np.ndarray:
        """(N,) mask: wrong after every epoch."""
        return ~self.correct.any(axis=0)

    @cached_property
    def flips(self) -> np.ndarray:
        """(N,) how many times the predicted class changes between consecutive epochs."""
        return (self.predictions[1:] != self.predictions[:-1]).sum(axis=0)

    def flipped(self, n: int) -> np.ndarray:
        """(N,) mask: the prediction changed at least n times."""
        return self.flips >= max(int(n), 1)

    def category(self, name: str, k: int = 2, n: int = 2) -> np.ndarray:
        """The mask of one of CATEGORIES; `k` is learned late's epoch, `n` flipped's minimum count."""
        masks = {
            "learned late": lambda: self.learned_late(k),
            "forgotten": lambda: self.forgotten,
            "never learned": lambda: self.never_learned,
            "flipped": lambda: self.flipped(n),
        }
        if name not in masks:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}, got {name!r}")
        return masks[name]()

    def per_digit(self, mask: np.ndarray) -> np.ndarray:
        """(10,) how many samples of each given digit `mask` holds."""
        return np.bincount(self.labels[np.asarray(mask, dtype=bool)], minlength=NUM_CLASSES)

    @cached_property
    def confidence(self) -> np.ndarray:
        """(N,) cartography's confidence: the mean over epochs of p(given label)."""
        return self.given_probability.mean(axis=0)

    @cached_property
    def variability(self) -> np.ndarray:
        """(N,) cartography's variability: the standard deviation over epochs of p(given label)."""
        return self.given_probability.std(axis=0)

    def story(self, index: int) -> dict[str, np.ndarray | int]:
        """One sample over epochs: p(given label), p(final prediction) and that final prediction."""
        final = int(self.predictions[-1, index])
        return {
            "epoch": np.arange(1, self.epochs + 1),
            "given": self.given_probability[:, index],
            "final": self.probabilities[:, index, final],
            "final_prediction": final,
        }


def load_run_dynamics(run_dir: str | Path, labels: np.ndarray) -> Dynamics | None:
    """The dynamics a run recorded for a split with these labels, or None (an old run, another split, a bad file)."""
    probabilities = read(Path(run_dir) / FILE_NAME, len(labels))
    if probabilities is None:
        return None
    return Dynamics(probabilities, np.asarray(labels, dtype=np.int64))
