"""Batch augmentation: what a training batch looks like after it, measured on images made for the purpose."""

from __future__ import annotations

import pytest
import torch

from mnist_core import augment
from mnist_core.augment import MAX_NOISE_SD, MAX_SHIFT_PX, NOISE_P, augment_batch
from mnist_core.data import normalize


@pytest.fixture
def no_noise(monkeypatch):
    """Geometry and stroke checks on clean squares: noise would put ink on the border and move the centre of mass."""
    monkeypatch.setattr(augment, "NOISE_P", 0.0)


def _square(n: int) -> torch.Tensor:
    """n uint8 images of a white 8x8 square in the middle of black."""
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    images[:, :, 10:18, 10:18] = 255
    return images


def _ink(normalized: torch.Tensor) -> torch.Tensor:
    """Ink in [0, 1] per pixel from normalized images."""
    black = float(normalize(torch.zeros(1, dtype=torch.uint8)))
    white = float(normalize(torch.full((1,), 255, dtype=torch.uint8)))
    return (normalized - black) / (white - black)


def _centre_of_mass(ink: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(28, dtype=torch.float32).view(1, 28, 1)
    cols = torch.arange(28, dtype=torch.float32).view(1, 1, 28)
    ink = ink.squeeze(1).clamp(min=0)
    total = ink.sum(dim=(1, 2))
    return torch.stack([(ink * rows).sum(dim=(1, 2)) / total, (ink * cols).sum(dim=(1, 2)) / total], dim=1)


def test_output_is_a_normalized_batch_of_the_same_shape_with_black_borders(no_noise):
    out = augment_batch(_square(64), torch.Generator().manual_seed(0))
    assert out.shape == (64, 1, 28, 28) and out.dtype == torch.float32
    ink = _ink(out)
    assert ink.min() >= -1e-5 and ink.max() <= 1 + 1e-5
    # The square never reaches the border: pixels warped in from outside the image are black, not grey.
    assert ink[:, :, 0, :].abs().max() < 1e-5 and ink[:, :, :, 0].abs().max() < 1e-5


def test_digits_move_a_little_and_keep_most_of_their_ink(no_noise):
    images = _square(256)
    out = _ink(augment_batch(images, torch.Generator().manual_seed(1)))
    moved = _centre_of_mass(out) - _centre_of_mass(_ink(normalize(images)))
    # A shift of at most MAX_SHIFT_PX, plus what rotating and scaling about the centre adds for a centred square.
    assert moved.abs().max() <= MAX_SHIFT_PX + 1.0
    assert moved.abs().max() > 0.5, "some digits must actually move"
    ratio = out.sum(dim=(1, 2, 3)) / 64.0
    # Scaled, thickened or thinned (a full erosion and a 0.85 scale leave an 8x8 square 0.4 of its ink), never
    # erased or flooded.
    assert ratio.min() > 0.3 and ratio.max() < 2.0
    assert (ratio - 1).abs().max() > 0.05, "some digits must change size or stroke"


def test_the_same_generator_seed_gives_the_same_batch_and_another_seed_another():
    images = _square(16)
    a = augment_batch(images, torch.Generator().manual_seed(7))
    b = augment_batch(images, torch.Generator().manual_seed(7))
    c = augment_batch(images, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalized_input_gives_the_same_result_as_uint8_pixels():
    images = _square(8)
    from_pixels = augment_batch(images, torch.Generator().manual_seed(3))
    from_floats = augment_batch(normalize(images), torch.Generator().manual_seed(3))
    assert torch.allclose(from_pixels, from_floats, atol=1e-5)


def test_a_share_of_the_batch_gets_noise_that_stays_in_the_pixel_range():
    blank = torch.zeros(1000, 1, 28, 28, dtype=torch.uint8)
    ink = _ink(augment_batch(blank, torch.Generator().manual_seed(5)))
    assert ink.min() >= -1e-5 and ink.max() <= 1 + 1e-5  # clipped to what a pixel can hold
    noisy = ink.amax(dim=(1, 2, 3)) > 1e-5  # a blank image gets ink only from noise
    assert abs(noisy.float().mean().item() - NOISE_P) < 0.05
    # Half of zero-mean noise is clipped away on black paper; what remains is at most a few MAX_NOISE_SD high.
    assert 0.0 < ink[noisy].mean().item() < MAX_NOISE_SD
