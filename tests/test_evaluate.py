"""Inference over a split and its metrics, checked against sums worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mnist_core.evaluate import confusion_matrix, evaluate, per_class_metrics


class FixedLogits(nn.Module):
    """A 'model' that answers the logits stored in pixel (0, 0, 0..9) of each image: its answers are chosen by the test."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # evaluate finds the device through the parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0, :10]


def _images_answering(logits: list[list[float]]) -> torch.Tensor:
    """Normalized float images whose first row holds the logits FixedLogits will return."""
    images = torch.zeros(len(logits), 1, 28, 28)
    images[:, 0, 0, :10] = torch.tensor(logits)
    return images


def test_accuracy_loss_and_errors_of_known_answers():
    # Three images: confidently right (class 1), confidently wrong (says 2, label 0), uniform (label 3).
    logits = [[0, 10, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 10, 0, 0, 0, 0, 0, 0, 0], [0] * 10]
    labels = torch.tensor([1, 0, 3])
    result = evaluate(FixedLogits(), _images_answering(logits), labels)
    assert result.predictions.tolist() == [1, 2, 0]  # a tie goes to the first class, as argmax does
    assert result.accuracy == pytest.approx(1 / 3)
    assert result.summary()["errors"] == 2 and result.n == 3
    # Cross-entropy by hand: -log softmax of the label's logit.
    right = -math.log(math.exp(10) / (math.exp(10) + 9))
    wrong = -math.log(1 / (math.exp(10) + 9))
    uniform = math.log(10)
    assert result.loss == pytest.approx((right + wrong + uniform) / 3, rel=1e-5)
    assert np.allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_evaluate_puts_a_training_model_back_in_training_mode_and_batches_do_not_matter():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(784, 10))
    model.train()
    images = torch.randint(0, 256, (600, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 10, (600,), generator=torch.Generator().manual_seed(1))
    first, second = evaluate(model, images, labels), evaluate(model, images, labels)
    assert model.training, "evaluate must not leave a training model in eval mode"
    # Dropout is off while evaluating (eval mode), so two passes agree exactly, across batch boundaries too.
    assert np.array_equal(first.probabilities, second.probabilities)


def test_confusion_and_per_class_metrics_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 0, 1, 1, 2, 2])
    confusion = confusion_matrix(labels, predictions)
    assert confusion[0, 0] == 2 and confusion[0, 1] == 1 and confusion[1, 1] == 1 and confusion[1, 2] == 1
    assert confusion[2, 2] == 1 and confusion.sum() == 6
    metrics = per_class_metrics(confusion)
    # Class 0: 2 of 3 found (recall 2/3), both "0" answers right (precision 1).
    assert metrics["recall"][0] == pytest.approx(2 / 3) and metrics["precision"][0] == pytest.approx(1.0)
    # Class 2: one "2" right out of two "2" answers; its one sample found.
    assert metrics["precision"][2] == pytest.approx(0.5) and metrics["recall"][2] == pytest.approx(1.0)
    assert metrics["f1"][2] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    # Classes nobody has or predicts get zeros, not NaN.
    assert metrics["support"][5] == 0 and metrics["f1"][5] == 0 and not np.isnan(metrics["precision"]).any()


def test_an_empty_split_has_no_accuracy_to_invent():
    result = evaluate(FixedLogits(), torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long))
    assert result.n == 0 and result.accuracy == 0.0 and result.loss == 0.0
