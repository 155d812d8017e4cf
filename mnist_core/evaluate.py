"""Batched inference over a split and the metrics derived from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_core.model import as_input

if TYPE_CHECKING:  # pandas costs a trainer's start-up a noticeable import; only the table needs it
    import pandas as pd

NUM_CLASSES = 10
# 250 images per forward pass was the fastest batch for inference on the 2-core CPU here.
INFERENCE_BATCH = 250


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = INFERENCE_BATCH) -> torch.Tensor:
    """Logits (N, 10) on the CPU for images (N, 1, 28, 28) (uint8 pixels or normalized), in eval mode."""
    device = next(model.parameters()).device
    logits = torch.empty(len(images), NUM_CLASSES)  # filled in place, as in embed (why: there)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            logits[start : start + len(batch)] = model(as_input(batch, device)).float().cpu()
    finally:
        model.train(was_training)
    return logits


@torch.inference_mode()
def embed(model: nn.Module, images: torch.Tensor, batch_size: int = INFERENCE_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (N, 128) and logits (N, 10) in one pass over images (uint8 pixels or normalized), in eval mode."""
    device = next(model.parameters()).device
    # Filled in place: per-batch results kept in a list would sit between the freed batch buffers
    # on the heap and keep it from being reused (docs/performance.md, Memory and load).
    features = np.empty((len(images), model.fc2.in_features), np.float32)
    logits = np.empty((len(images), model.fc2.out_features), np.float32)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            batch = model.features(as_input(images[start : start + batch_size], device))
            features[start : start + len(batch)] = batch.float().cpu().numpy()
            logits[start : start + len(batch)] = model.fc2(batch).float().cpu().numpy()
    finally:
        model.train(was_training)
    return features, logits


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Counts (10, 10): row = true class, column = predicted class."""
    index = labels.astype(np.int64) * NUM_CLASSES + predictions.astype(np.int64)
    return np.bincount(index, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)


def per_class_metrics(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined)."""
    true_positive = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0).astype(float)
    support = confusion.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros(NUM_CLASSES), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(NUM_CLASSES), where=denominator > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


@dataclass(frozen=True)
class Evaluation:
    """A model's outputs on a split, and every metric the app shows about them."""

    probabilities: np.ndarray  # (N, 10) float32
    labels: np.ndarray  # (N,) int64
    loss: float  # mean cross-entropy

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if self.n else 0.0

    @property
    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.labels, self.predictions)

    def per_class(self) -> dict[str, np.ndarray]:
        """Precision, recall (= per-class accuracy), F1 and support for each digit."""
        return per_class_metrics(self.confusion)

    def predictions_table(self) -> pd.DataFrame:
        """One row per image: index, label, prediction, confidence, p0..p9 (what `evaluate --predictions` writes)."""
        import pandas as pd

        table = pd.DataFrame(
            {
                "index": np.arange(self.n),
                "label": self.labels,
                "prediction": self.predictions,
                "confidence": self.probabilities.max(axis=1) if self.n else np.empty(0),
            }
        )
        for digit in range(NUM_CLASSES):
            table[f"p{digit}"] = self.probabilities[:, digit]
        return table

    def predictions_csv(self) -> str:
        """predictions_table() as CSV text (6 significant digits, so tiny probabilities keep their size)."""
        return self.predictions_table().to_csv(index=False, float_format="%.6g")

    def summary(self) -> dict:
        """JSON-ready figures: accuracy, loss, n, errors and per-class metrics."""
        per_class = self.per_class()
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "n": self.n,
            "errors": int(self.n - self.correct.sum()),
            "per_class": {
                str(digit): {
                    "precision": float(per_class["precision"][digit]),
                    "recall": float(per_class["recall"][digit]),
                    "f1": float(per_class["f1"][digit]),
                    "support": int(per_class["support"][digit]),
                }
                for digit in range(NUM_CLASSES)
            },
        }


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> Evaluation:
    """Run the model over a whole split."""
    logits = predict_logits(model, images)
    loss = F.cross_entropy(logits, labels, reduction="mean").item() if len(labels) else 0.0
    probabilities = torch.softmax(logits, dim=1).numpy()
    return Evaluation(probabilities=probabilities, labels=labels.numpy().astype(np.int64), loss=loss)
