"""Suspected label errors, found from a model's own probabilities in the spirit of confident learning.

Confident learning (Northcutt et al., 2021) gives each class j a threshold t_j: the
model's mean probability for j over the samples labelled j (how sure it usually is
when j is right). A sample "confidently belongs" to the classes whose probability
reaches their threshold; when the likeliest of those is not its given label, the
label is suspect. Suspects are ranked by the normalized margin
p(suggested) - p(given): near 1 means the model is sure the label is wrong.

On the split the model was trained on, it has partly memorized the given labels,
so the test split (or a model trained without the sample) finds more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mnist_core.evaluate import NUM_CLASSES


@dataclass(frozen=True)
class LabelIssue:
    """One suspect: its index in the split (torchvision's order), the given label, the suggested one, a score in (0, 1]."""

    index: int
    given: int
    suggested: int
    score: float

    def to_dict(self) -> dict:
        """JSON-ready form: {"index", "given", "suggested", "score"}."""
        return asdict(self)


def class_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """t_j = mean probability of class j over the samples labelled j; +inf for a class with no samples."""
    thresholds = np.full(probabilities.shape[1], np.inf)
    for j in range(probabilities.shape[1]):
        members = labels == j
        if members.any():
            thresholds[j] = probabilities[members, j].mean()
    return thresholds


def find_label_issues(probabilities: np.ndarray, labels: np.ndarray, top: int | None = None) -> list[LabelIssue]:
    """The samples whose given label the model confidently contradicts, most suspect first (at most `top`)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES or len(probabilities) != len(labels):
        raise ValueError(
            f"expected probabilities (N, {NUM_CLASSES}) and labels (N,), got {probabilities.shape} and {labels.shape}"
        )
    if len(labels) == 0:
        return []
    thresholds = class_thresholds(probabilities, labels)
    confident = probabilities >= thresholds[None, :]
    # Among the classes a sample confidently belongs to, the likeliest one; -1 where there is none.
    masked = np.where(confident, probabilities, -1.0)
    suggested = masked.argmax(axis=1)
    has_confident = confident.any(axis=1)
    rows = np.arange(len(labels))
    suspect = has_confident & (suggested != labels)
    scores = probabilities[rows, suggested] - probabilities[rows, labels]
    candidates = np.flatnonzero(suspect & (scores > 0))
    # Highest score first; equal scores in index order so the ranking is reproducible.
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    if top is not None:
        order = order[: max(top, 0)]
    return [LabelIssue(int(i), int(labels[i]), int(suggested[i]), round(float(scores[i]), 6)) for i in order]
