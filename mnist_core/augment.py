"""Batch augmentation: small random affine warps, stroke-width changes and sensor noise.

Done on whole batches with `affine_grid`/`grid_sample` instead of per-sample PIL
transforms. The warps cover what drawn digits do that MNIST's do not quite: a
slight tilt, a different size, an off-centre position, thicker or thinner strokes.
Thinning reaches a full 3x3 erosion and some digits get Gaussian noise, because the
robustness report (mnist_core/robustness.py) found a model trained without them weak
on exactly those: thin pens and noisy scans (docs/inside.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mnist_core.data import MEAN, STD, normalized

BACKGROUND = -MEAN / STD  # a black pixel after normalization
MAX_ROTATION_DEG = 12.0
SCALE_RANGE = (0.85, 1.12)
MAX_SHIFT_PX = 2.5
STROKE_CHANGE_P = 0.3  # share of the batch whose strokes are thickened or thinned
STROKE_STRENGTH = (0.5, 1.0)  # how far towards a full 3x3 dilation or erosion, drawn per digit
NOISE_P = 0.2  # share of the batch that gets Gaussian noise
MAX_NOISE_SD = 0.3  # its standard deviation, drawn per digit up to this, in units of full ink


def augment_batch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Randomly rotate, scale, shift and re-stroke a batch (N, 1, 28, 28) of uint8 pixels or normalized images.

    Returns normalized images.
    """
    images = normalized(images)
    n = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    angle = uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG) * (math.pi / 180)
    scale = uniform(*SCALE_RANGE)
    shift = uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX), uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX)
    stroke = torch.rand(n, generator=generator)
    strength = uniform(*STROKE_STRENGTH).view(n, 1, 1, 1).to(images.device)
    noise_sd = torch.where(torch.rand(n, generator=generator) < NOISE_P, uniform(0.0, MAX_NOISE_SD), 0.0)
    noise = torch.randn(images.shape, generator=generator) * noise_sd.view(n, 1, 1, 1)

    # affine_grid maps output to input coordinates, so the inverse scale enlarges the digit.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shift[0] * (2 / 28)], dim=1),
            torch.stack([sin, cos, shift[1] * (2 / 28)], dim=1),
        ],
        dim=1,
    ).to(images.device)
    # Warp the offset from the background so that pixels warped in from outside are black.
    ink = images - BACKGROUND
    grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
    ink = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Dilation (max pool) thickens strokes, erosion (min pool) thins them.
    thicker = (stroke < STROKE_CHANGE_P / 2).to(images.device).view(n, 1, 1, 1)
    thinner = ((stroke >= STROKE_CHANGE_P / 2) & (stroke < STROKE_CHANGE_P)).to(images.device).view(n, 1, 1, 1)
    if thicker.any():
        ink = torch.where(thicker, torch.lerp(ink, F.max_pool2d(ink, 3, stride=1, padding=1), strength), ink)
    if thinner.any():
        ink = torch.where(thinner, torch.lerp(ink, -F.max_pool2d(-ink, 3, stride=1, padding=1), strength), ink)
    # Noise in units of full ink (1 / STD after normalization), clipped to the range a pixel can hold.
    ink = (ink + noise.to(images.device) / STD).clamp(0.0, 1.0 / STD)
    return ink + BACKGROUND
