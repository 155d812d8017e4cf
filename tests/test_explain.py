"""Saliency, embeddings, projection and nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_core import explain
from mnist_core.data import normalize
from mnist_core.model import MnistCNN, prepare


@pytest.fixture
def model() -> MnistCNN:
    torch.manual_seed(0)
    return prepare(MnistCNN().eval(), torch.device("cpu"))


def _digit(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[6:22, 12:16] = 255
    pixels[rng.integers(0, 28, 30), rng.integers(0, 28, 30)] = 120
    return normalize(torch.from_numpy(pixels)).view(1, 1, 28, 28)


def test_saliency_shape_and_dtype(model):
    result = explain.saliency(model, _digit(), target=3)
    assert result.shape == (28, 28)
    assert result.dtype == np.float32
    assert np.isfinite(result).all()
    assert np.abs(result).sum() > 0


def test_saliency_of_black_image_is_zero(model):
    black = normalize(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    assert np.array_equal(explain.saliency(model, black, target=7), np.zeros((28, 28), dtype=np.float32))


def test_saliency_is_zero_where_there_is_no_ink(model):
    image = _digit()
    result = explain.saliency(model, image, target=1)
    blank = (image.squeeze() <= explain.BLACK + 1e-6).numpy()
    assert blank.any()
    assert np.all(result[blank] == 0)


def test_saliency_completeness(model):
    """Integrated gradients add up to the logit difference between the image and black."""
    image = _digit(1)
    target = 4
    result = explain.saliency(model, image, target=target, steps=256)
    with torch.no_grad():
        black = torch.full_like(image, explain.BLACK)
        delta = (model(image) - model(black))[0, target].item()
    assert result.sum() == pytest.approx(delta, rel=0.05, abs=1e-3)


def test_saliency_works_inside_inference_mode_and_keeps_mode(model):
    model.train()
    with torch.inference_mode():
        image = _digit()
        result = explain.saliency(model, image, target=0)
    assert result.shape == (28, 28)
    assert model.training


def test_saliency_accepts_chw_and_rejects_bad_input(model):
    assert explain.saliency(model, _digit()[0], target=2).shape == (28, 28)
    with pytest.raises(ValueError):
        explain.saliency(model, torch.zeros(2, 1, 28, 28), target=2)
    with pytest.raises(ValueError):
        explain.saliency(model, _digit(), target=10)
