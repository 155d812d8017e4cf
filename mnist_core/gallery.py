"""The error explorer's questions, answered from an Analysis: which samples to show, in what order, with what caption.

The page only turns widget values into a GalleryQuery and draws what comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnist_core.analysis import Analysis
from mnist_core.data import Split
from mnist_core.embedding import nearest
from mnist_core.evaluate import NUM_CLASSES

SORTS = {
    "confidence": "most confident",
    "loss": "highest loss",
    "index": "dataset order",
}
PAGE_SIZE = 24
# A 60,000-point scatter is a multi-megabyte page; the map shows a fixed sample of this many, every error included.
MAP_POINTS = 10_000


@dataclass(frozen=True)
class GalleryQuery:
    """Which samples the gallery shows: class filters, errors only or all, an optional set of indices, the order."""

    true: int | None = None
    predicted: int | None = None
    errors_only: bool = True
    subset: tuple[int, ...] | None = None
    sort: str = "confidence"

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")


def select(analysis: Analysis, query: GalleryQuery) -> np.ndarray:
    """Indices of the samples matching `query`, in its order (ties by index)."""
    keep = np.ones(len(analysis), dtype=bool)
    if query.subset is not None:
        chosen = np.zeros(len(analysis), dtype=bool)
        chosen[[i for i in query.subset if 0 <= i < len(analysis)]] = True
        keep &= chosen
    if query.true is not None:
        keep &= analysis.labels == query.true
    if query.predicted is not None:
        keep &= analysis.predictions == query.predicted
    if query.errors_only:
        keep &= analysis.predictions != analysis.labels
    indices = np.flatnonzero(keep)
    if query.sort == "index":
        return indices
    key = analysis.confidence if query.sort == "confidence" else analysis.losses
    # Descending key, then ascending index: a stable, reproducible order.
    return indices[np.lexsort((indices, -key[indices]))]


def page_count(total: int, size: int = PAGE_SIZE) -> int:
    """Number of pages for `total` items (at least 1, so an empty result still has a page to show)."""
    return max(1, -(-total // size))


def page_slice(indices: np.ndarray, page: int, size: int = PAGE_SIZE) -> np.ndarray:
    """The items on page `page` (1-based), clamped to the pages that exist."""
    page = min(max(page, 1), page_count(len(indices), size))
    return indices[(page - 1) * size : page * size]


def caption(analysis: Analysis, index: int) -> str:
    """'7 → 2 (98%)': the given label, the prediction and its confidence."""
    return f"{analysis.labels[index]} → {analysis.predictions[index]} ({analysis.confidence[index]:.0%})"


def confusion_table(confusion: np.ndarray, normalized: bool = False) -> pd.DataFrame:
    """The confusion matrix as a table, rows 'true t', columns the predicted digit ('0'-'9'); rows sum to 1 when normalized."""
    values = confusion.astype(float)
    if normalized:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    else:
        values = confusion.astype(np.int64)
    return pd.DataFrame(
        values,
        index=pd.Index([f"true {t}" for t in range(NUM_CLASSES)], name="true \\ pred"),  # short: it heads the narrow corner cell
        columns=[str(p) for p in range(NUM_CLASSES)],
    )


def styled_confusion(confusion: np.ndarray, normalized: bool = False):
    """The confusion table with each cell tinted by its share of the true digit: green on the diagonal, red off it."""
    table = confusion_table(confusion, normalized)
    totals = confusion.sum(axis=1, keepdims=True).astype(float)
    share = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    # Errors are rare (a few per thousand): a square root makes a 1% cell visible next to a 0.1% one.
    strength = np.sqrt(share)
    css = np.empty(confusion.shape, dtype=object)
    for t in range(NUM_CLASSES):
        for p in range(NUM_CLASSES):
            if t == p:
                css[t, p] = f"background-color: rgba(44, 160, 44, {0.15 + 0.45 * strength[t, p]:.2f})"
            elif confusion[t, p]:
                css[t, p] = f"background-color: rgba(214, 39, 40, {min(0.1 + 1.2 * strength[t, p], 0.85):.2f})"
            else:
                css[t, p] = ""
    styles = pd.DataFrame(css, index=table.index, columns=table.columns)
    return table.style.format(_percent if normalized else "{:d}").apply(lambda _: styles, axis=None)


def _percent(share: float) -> str:
    """A row share as a short percentage without the sign ('99.4', '0.1', '100', '0'), to fit a narrow cell."""
    if share == 0 or share == 1:
        return f"{share * 100:.0f}"
    return f"{share * 100:.1f}"


def per_class_table(analysis: Analysis) -> pd.DataFrame:
    """Precision, recall, F1 and support per digit."""
    metrics = analysis.evaluation.per_class()
    table = pd.DataFrame({name: metrics[name] for name in ("precision", "recall", "f1", "support")})
    table.index = pd.Index([str(d) for d in range(NUM_CLASSES)], name="digit")
    return table


def map_points(analysis: Analysis, limit: int = MAP_POINTS) -> np.ndarray:
    """Which samples the embedding map plots: all of them up to `limit`, else every error plus a fixed random sample."""
    n = len(analysis)
    if n <= limit:
        return np.arange(n)
    errors = np.flatnonzero(analysis.predictions != analysis.labels)
    rest = np.setdiff1d(np.arange(n), errors)
    take = max(limit - len(errors), 0)
    sample = np.random.default_rng(0).choice(rest, size=min(take, len(rest)), replace=False)
    return np.sort(np.concatenate([errors, sample]))


def neighbours(sample: Analysis, index: int, bank: Analysis, digit: int, k: int = 6) -> np.ndarray:
    """The k training images labelled `digit` nearest to sample `index` in penultimate-feature space (never itself)."""
    candidates = bank.labels == digit
    if sample.split == bank.split and sample.digest == bank.digest:
        candidates = candidates.copy()
        candidates[index] = False
    return nearest(sample.features[index], bank.features, k=k, candidates=candidates)


def enlarge(pixels: np.ndarray, scale: int = 3) -> np.ndarray:
    """Nearest-neighbour upscaling so a 28x28 digit stays crisp (the browser would blur it)."""
    # repeat, not np.kron: kron multiplies every pixel and was most of a gallery rerun's time.
    return np.asarray(pixels).repeat(scale, axis=0).repeat(scale, axis=1)


def pixels(split: Split, indices: Sequence[int]) -> np.ndarray:
    """The uint8 images (k, 28, 28) of a few samples of a split, for display."""
    return split.raw()[np.asarray(indices, dtype=np.int64)].numpy()
