"""What each layer of MnistCNN makes of one digit, and pictures of it (small multiples built with numpy).

`MnistCNN.features` pools before its ReLU (the same result, cheaper), so the full-size
maps after ReLU that people want to see are computed here, layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_core.data import normalize

SIZE = 28
# Signed values (filters, logits) are shown red for positive and blue for negative, as the saliency overlay does.
POSITIVE = np.array([0.86, 0.15, 0.15])
NEGATIVE = np.array([0.13, 0.4, 0.9])
GAP_COLOUR = 0.93  # light grey between tiles, so black maps stay separate


@dataclass(frozen=True)
class Activations:
    """One digit's trip through MnistCNN: conv maps after ReLU, fc1 after ReLU, logits and probabilities."""

    conv1: np.ndarray  # (32, 28, 28)
    conv2: np.ndarray  # (64, 14, 14)
    fc1: np.ndarray  # (128,)
    logits: np.ndarray  # (10,)
    probabilities: np.ndarray  # (10,)


def as_pixels(image) -> torch.Tensor:
    """One digit as float ink in [0, 1], shape (1, 1, 28, 28), from uint8 pixels or floats in [0, 1] of any 28x28 shape."""
    tensor = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255.0
    tensor = tensor.detach().float().cpu()
    if tensor.numel() != SIZE * SIZE:
        raise ValueError(f"expected one 28x28 image, got shape {tuple(tensor.shape)}")
    return tensor.reshape(1, 1, SIZE, SIZE).clone()


def model_input(pixels: torch.Tensor) -> torch.Tensor:
    """Ink in [0, 1] (N, 1, 28, 28) -> the normalized floats the model reads (on the model's device is the caller's job)."""
    return normalize(pixels.float().clamp(0.0, 1.0))


@torch.inference_mode()
def activations(model: nn.Module, image) -> Activations:
    """The activations of every layer for one digit (uint8 pixels or ink in [0, 1], 28x28)."""
    device = next(model.parameters()).device
    x = model_input(as_pixels(image)).to(device)
    was_training = model.training
    model.eval()
    try:
        conv1 = F.relu(model.conv1(x))
        conv2 = F.relu(model.conv2(F.max_pool2d(conv1, 2)))
        fc1 = F.relu(model.fc1(torch.flatten(F.max_pool2d(conv2, 2), 1)))
        logits = model.fc2(fc1)
    finally:
        model.train(was_training)
    return Activations(
        conv1=conv1[0].float().cpu().numpy(),
        conv2=conv2[0].float().cpu().numpy(),
        fc1=fc1[0].float().cpu().numpy(),
        logits=logits[0].float().cpu().numpy(),
        probabilities=torch.softmax(logits[0].double(), dim=0).cpu().numpy(),
    )


def conv1_filters(model: nn.Module) -> np.ndarray:
    """conv1's 32 3x3 kernels, (32, 3, 3) float32."""
    return model.conv1.weight.detach().float().cpu().numpy()[:, 0]


def _greys(maps: np.ndarray, peak: float | None) -> np.ndarray:
    """Non-negative maps -> RGB in [0, 1], white = `peak` (default: the largest value of all maps)."""
    top = float(maps.max()) if peak is None else float(peak)
    values = np.clip(maps / top, 0.0, 1.0) if top > 0 else np.zeros_like(maps)
    return np.repeat(values[..., None], 3, axis=-1)


def _signed(maps: np.ndarray, peak: float | None) -> np.ndarray:
    """Signed maps -> RGB in [0, 1]: white at zero, red for positive, blue for negative, full colour at |peak|."""
    top = float(np.abs(maps).max()) if peak is None else float(peak)
    strength = np.clip(np.abs(maps) / top, 0.0, 1.0)[..., None] if top > 0 else np.zeros((*maps.shape, 1))
    colour = np.where((maps > 0)[..., None], POSITIVE, NEGATIVE)
    return 1.0 * (1 - strength) + colour * strength


def grid_image(
    maps: np.ndarray, columns: int = 8, scale: int = 3, gap: int = 2, signed: bool = False, peak: float | None = None
) -> np.ndarray:
    """Small multiples: maps (K, H, W) tiled `columns` wide, each enlarged `scale` times -> RGB uint8 image.

    Non-negative maps (after ReLU) share one grey scale (white = the largest value of all of them,
    or `peak`), so bright tiles are the units this digit excites most; `signed=True` colours
    positive red and negative blue (filters, logits).
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"grid_image expects maps (K, H, W), got shape {maps.shape}")
    count, height, width = maps.shape
    colours = _signed(maps, peak) if signed else _greys(maps, peak)
    rows = -(-count // columns)
    tile_h, tile_w = height * scale, width * scale
    out = np.full((rows * tile_h + (rows + 1) * gap, columns * tile_w + (columns + 1) * gap, 3), GAP_COLOUR)
    for k in range(count):
        r, c = divmod(k, columns)
        top, left = gap + r * (tile_h + gap), gap + c * (tile_w + gap)
        out[top : top + tile_h, left : left + tile_w] = colours[k].repeat(scale, axis=0).repeat(scale, axis=1)
    return (out * 255).round().astype(np.uint8)


def strip_image(values: np.ndarray, columns: int = 32, scale: int = 10, signed: bool = False) -> np.ndarray:
    """A vector (fc1's 128 units, the 10 logits) as a strip of squares, `columns` to a row -> RGB uint8 image."""
    values = np.asarray(values, dtype=np.float32).ravel()
    return grid_image(values.reshape(-1, 1, 1), columns=min(columns, len(values)), scale=scale, gap=1, signed=signed)


def enlarged(map_: np.ndarray, side: int = 196, signed: bool = False) -> np.ndarray:
    """One map (H, W) blown up to about `side` pixels (nearest neighbour, so each unit stays a square) -> RGB uint8."""
    map_ = np.asarray(map_, dtype=np.float32)
    scale = max(1, side // max(map_.shape))
    return grid_image(map_[None], columns=1, scale=scale, gap=0, signed=signed)
