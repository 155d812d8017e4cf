"""Label issues: every sample ranked by how likely its given label is wrong, with confident learning's flag.

Confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels", JAIR 2021) works from out-of-sample probabilities
p(j | x) and the given labels:

1. Each class j gets a threshold t_j: the mean of p(j | x) over the samples labelled j,
   i.e. how sure the model usually is when a j is labelled j (`class_thresholds`).
2. A sample "confidently belongs" to every class whose probability reaches its
   threshold. Its guessed true label is that class when there is one, or its
   likeliest class when there are several (`confident_guess`).
3. The sample is a label issue when it confidently belongs somewhere, the guess is
   not its given label, and the given label is not (within 1e-6) its likeliest class.

These are the rules of `cleanlab.filter.find_label_issues(labels, probs,
filter_by="confident_learning")` (cleanlab 2.9: `count.compute_confident_joint`
and `filter._reduce_issues`); tests/test_label_issues.py checks that both agree.

The thresholds of a 99.5% model sit near 0.99, so very few samples pass them, and a
list that kept only those would hide the next most suspect ones. So every sample is
ranked by its margin p(suggested) - p(given), in [-1, 1], where the suggestion is the
confident guess for a flagged sample and the likeliest other class for the rest;
`confident` then says which entries also pass the test above.

Probabilities must come from a model that did not train on the sample (a
cross-validated audit, see mnist_core/audit.py, or the test split): on its own
training images a model has partly memorized the given labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mnist_core.evaluate import NUM_CLASSES

# cleanlab's tolerances (cleanlab.internal.constants): a probability within this of a threshold passes it,
# and a given label within this of the likeliest probability counts as the model's prediction.
TOLERANCE = 1e-6
# The threshold of a class nobody is labelled with: above any probability, so no sample belongs to it.
ABSENT_CLASS_THRESHOLD = 2.0


@dataclass(frozen=True)
class LabelIssue:
    """One ranked sample: its index in the split (torchvision's order), given and suggested label, score, flag."""

    index: int
    given: int
    suggested: int
    score: float  # p(suggested) - p(given): near 1 means the model is sure the label is wrong
    confident: bool  # passes confident learning's test

    def to_dict(self) -> dict:
        """JSON-ready form: {"index", "given", "suggested", "score", "confident"}."""
        return asdict(self)


def _checked(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES or len(probabilities) != len(labels):
        raise ValueError(
            f"expected probabilities (N, {NUM_CLASSES}) and labels (N,), got {probabilities.shape} and {labels.shape}"
        )
    return probabilities, labels


def class_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """t_j = mean probability of class j over the samples labelled j (ABSENT_CLASS_THRESHOLD for a class with none)."""
    thresholds = np.full(probabilities.shape[1], ABSENT_CLASS_THRESHOLD)
    for j in range(probabilities.shape[1]):
        members = labels == j
        if members.any():
            thresholds[j] = probabilities[members, j].mean()
    return np.clip(thresholds, 2 * TOLERANCE, None)


def confident_guess(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(has a confident class, guessed true label) per sample: step 2 of confident learning."""
    above = probabilities >= class_thresholds(probabilities, labels)[None, :] - TOLERANCE
    count = above.sum(axis=1)
    guess = np.where(count > 1, probabilities.argmax(axis=1), above.argmax(axis=1))
    return count > 0, guess


def confident_mask(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Which samples confident learning flags as label issues (step 3)."""
    probabilities, labels = _checked(probabilities, labels)
    rows = np.arange(len(labels))
    has_confident, guess = confident_guess(probabilities, labels)
    nudged = probabilities.copy()
    nudged[rows, labels] += TOLERANCE
    predicted_given = nudged.argmax(axis=1) == labels
    return has_confident & (guess != labels) & ~predicted_given


def find_label_issues(probabilities: np.ndarray, labels: np.ndarray, top: int | None = None) -> list[LabelIssue]:
    """Every sample ranked by p(suggested) - p(given), most suspect first: min(top, N) entries (all without `top`)."""
    probabilities, labels = _checked(probabilities, labels)
    if len(labels) == 0:
        return []
    rows = np.arange(len(labels))
    flagged = confident_mask(probabilities, labels)
    _, guess = confident_guess(probabilities, labels)
    others = probabilities.copy()
    others[rows, labels] = -np.inf
    suggested = np.where(flagged, guess, others.argmax(axis=1))
    scores = probabilities[rows, suggested] - probabilities[rows, labels]
    # Highest score first; equal scores in index order so the ranking is reproducible.
    order = np.lexsort((rows, -scores))
    if top is not None:
        order = order[: max(top, 0)]
    return [LabelIssue(int(i), int(labels[i]), int(suggested[i]), round(float(scores[i]), 6), bool(flagged[i])) for i in order]


def ensemble_probabilities(members: list[np.ndarray]) -> np.ndarray:
    """The mean of several models' probabilities on the same samples (N, 10), as float32."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    shapes = {np.shape(m) for m in members}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members must all have the same shape, got {sorted(shapes)}")
    return np.mean([np.asarray(m, dtype=np.float64) for m in members], axis=0).astype(np.float32)
