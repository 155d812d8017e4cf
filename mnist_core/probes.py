"""What-if probes on a 28x28 digit: tensor transformations, a batched sweep of one of them, occlusion sensitivity.

All of it works on ink in [0, 1] (0 = background), in batches (N, 1, 28, 28), with torch ops:
rotation, scale and shift are one `affine_grid`/`grid_sample` warp about the image centre,
stroke thickening and thinning are max- and min-pooling, noise is Gaussian, erasing sets a
box to background. The same functions make the robustness report's corruptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_core.activations import SIZE, as_pixels, model_input
from mnist_core.saliency import saliency_overlay

ROTATION_RANGE = (-60.0, 60.0)  # degrees, positive = anticlockwise on screen
SCALE_RANGE = (0.5, 1.5)
SHIFT_RANGE = (-6.0, 6.0)  # pixels, x to the right, y down
STROKE_RANGE = (-2.0, 2.0)  # pooling steps, positive thickens
NOISE_RANGE = (0.0, 1.0)  # standard deviation, in units of full ink
SWEEPS = {"rotation": ROTATION_RANGE, "scale": SCALE_RANGE, "shift x": SHIFT_RANGE, "shift y": SHIFT_RANGE}
SWEEP_STEPS = 49
OCCLUSION_PATCH = 6
OCCLUSION_STRIDE = 2
OCCLUSION_METHOD = f"occlusion: a {OCCLUSION_PATCH}x{OCCLUSION_PATCH} black patch slides over the digit"


@dataclass(frozen=True)
class Transform:
    """Settings of the what-if sliders; the default changes nothing."""

    rotation: float = 0.0  # degrees
    scale: float = 1.0
    shift_x: float = 0.0  # pixels
    shift_y: float = 0.0
    stroke: float = 0.0  # pooling steps; fractions blend
    noise: float = 0.0  # standard deviation of Gaussian noise added to the ink
    erase: tuple[int, int, int, int] | None = None  # box to set to background: top, left, height, width
    seed: int = 0  # the noise's seed: the same settings give the same picture

    def is_identity(self) -> bool:
        """Whether these settings leave every image as it is."""
        return self == Transform(seed=self.seed)


def warp(pixels: torch.Tensor, rotation, scale, shift_x, shift_y) -> torch.Tensor:
    """Rotate (degrees), scale and shift (pixels) ink (N, 1, 28, 28) about the image centre; each argument a number or (N,).

    Ink warped in from outside the image is background.
    """
    n = pixels.shape[0]

    def per_image(value) -> torch.Tensor:
        return torch.as_tensor(value, dtype=torch.float32).reshape(-1).expand(n)

    angle = per_image(rotation) * (math.pi / 180)
    scale, shift_x, shift_y = per_image(scale), per_image(shift_x), per_image(shift_y)
    # affine_grid maps each output position to the input position it samples: the inverse of the
    # forward map p -> scale * R p + d, i.e. R^T (p - d) / scale. Screen y points down, so an
    # anticlockwise turn on screen is a clockwise one in these coordinates.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    dx, dy = shift_x * (2 / SIZE), shift_y * (2 / SIZE)
    theta = torch.stack(
        [
            torch.stack([cos, -sin, -(cos * dx - sin * dy)], dim=1),
            torch.stack([sin, cos, -(sin * dx + cos * dy)], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    return F.grid_sample(pixels.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def restroke(pixels: torch.Tensor, amount: float) -> torch.Tensor:
    """Thicken (amount > 0, max pooling) or thin (amount < 0, min pooling) strokes; each 3x3 step widens or narrows by about a pixel a side."""
    steps = math.ceil(abs(amount))
    for step in range(steps):
        weight = min(1.0, abs(amount) - step)
        if amount > 0:
            pooled = F.max_pool2d(pixels, 3, stride=1, padding=1)
        else:
            pooled = -F.max_pool2d(-pixels, 3, stride=1, padding=1)
        pixels = pixels + weight * (pooled - pixels)
    return pixels


def add_noise(pixels: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """Gaussian noise of standard deviation `std` (same seed, same noise), clipped to the ink range."""
    if std <= 0:
        return pixels
    generator = torch.Generator().manual_seed(seed)
    return (pixels + std * torch.randn(pixels.shape, generator=generator)).clamp(0.0, 1.0)


def erase(pixels: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """Set a box (top, left, height, width) to background."""
    top, left, height, width = (int(v) for v in box)
    out = pixels.clone()
    out[..., max(top, 0) : max(top + height, 0), max(left, 0) : max(left + width, 0)] = 0.0
    return out


def blur(pixels: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation `sigma` pixels (one separable convolution)."""
    if sigma <= 0:
        return pixels
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = F.conv2d(pixels.float(), kernel.view(1, 1, 1, -1), padding=(0, radius))
    return F.conv2d(out, kernel.view(1, 1, -1, 1), padding=(radius, 0))


def apply(pixels: torch.Tensor, transform: Transform) -> torch.Tensor:
    """The what-if chain on ink (N, 1, 28, 28): stroke, then the warp, then erasing, then noise."""
    out = pixels.float()
    if transform.stroke:
        out = restroke(out, transform.stroke)
    if (transform.rotation, transform.scale, transform.shift_x, transform.shift_y) != (0.0, 1.0, 0.0, 0.0):
        out = warp(out, transform.rotation, transform.scale, transform.shift_x, transform.shift_y)
    if transform.erase is not None:
        out = erase(out, transform.erase)
    out = add_noise(out, transform.noise, transform.seed)
    return out.clamp(0.0, 1.0)


def transformed(image, transform: Transform) -> np.ndarray:
    """One digit (uint8 or ink in [0, 1]) after `transform`, as ink (28, 28) float32."""
    return apply(as_pixels(image), transform)[0, 0].numpy()


@torch.inference_mode()
def probabilities(model: nn.Module, pixels: torch.Tensor) -> np.ndarray:
    """Class probabilities (N, 10) for ink (N, 1, 28, 28), in one forward pass."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits = model(model_input(pixels).to(device))
    finally:
        model.train(was_training)
    return torch.softmax(logits.double(), dim=1).cpu().numpy()


@dataclass(frozen=True)
class Sweep:
    """Each class's probability as one transformation runs over its range."""

    kind: str
    values: np.ndarray  # (K,) the transformation's settings
    probabilities: np.ndarray  # (K, 10)

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class at each setting."""
        return self.probabilities.argmax(axis=1)

    def changes(self) -> list[tuple[float, int, int]]:
        """Where the prediction changes: (the first setting with the new answer, old class, new class), in sweep order."""
        p = self.predictions
        return [(float(self.values[i]), int(p[i - 1]), int(p[i])) for i in range(1, len(p)) if p[i] != p[i - 1]]


def sweep(model: nn.Module, image, kind: str, steps: int = SWEEP_STEPS, base: Transform | None = None) -> Sweep:
    """Run `kind` (rotation, scale, shift x, shift y) over its range on one digit, all settings in one batched forward pass.

    `base` holds the other sliders' settings; the swept one replaces its own.
    """
    if kind not in SWEEPS:
        raise ValueError(f"unknown sweep {kind!r}; use one of {', '.join(SWEEPS)}")
    base = base or Transform()
    low, high = SWEEPS[kind]
    values = np.linspace(low, high, steps, dtype=np.float32)
    pixels = as_pixels(image)
    # Stroke first, once, as in `apply`; then one warp of the whole batch with a setting per image.
    start = restroke(pixels, base.stroke) if base.stroke else pixels
    batch = start.expand(steps, 1, SIZE, SIZE)
    settings = {"rotation": base.rotation, "scale": base.scale, "shift x": base.shift_x, "shift y": base.shift_y}
    settings[kind] = torch.from_numpy(values)
    out = warp(batch, settings["rotation"], settings["scale"], settings["shift x"], settings["shift y"])
    rest = replace(Transform(), erase=base.erase, noise=base.noise, seed=base.seed)
    out = apply(out, rest)
    return Sweep(kind=kind, values=values, probabilities=probabilities(model, out))


@dataclass(frozen=True)
class Occlusion:
    """How much hiding each part of the digit lowers the probability of one class."""

    target: int
    base_probability: float
    patch: int
    positions: np.ndarray  # (P, 2) top, left of each patch
    drops: np.ndarray  # (P,) base probability minus the probability with that patch hidden
    map: np.ndarray  # (28, 28) each pixel's mean drop over the patches that cover it


def occlusion(
    model: nn.Module, image, target: int | None = None, patch: int = OCCLUSION_PATCH, stride: int = OCCLUSION_STRIDE
) -> Occlusion:
    """Occlusion sensitivity: a background-coloured patch slides over the digit; all positions in one forward pass.

    The patch is background (black), the absence of ink, so hiding empty paper changes nothing:
    the map shows only where the ink matters. `target` defaults to the predicted class.
    """
    pixels = as_pixels(image)
    starts = list(range(0, SIZE - patch + 1, stride))
    if starts[-1] != SIZE - patch:
        starts.append(SIZE - patch)
    positions = np.array([(top, left) for top in starts for left in starts], dtype=np.int64)
    # The unoccluded digit rides in the same batch: an identical image then gets bit-identical probabilities.
    batch = pixels.repeat(len(positions) + 1, 1, 1, 1)
    for k, (top, left) in enumerate(positions, start=1):
        batch[k, :, top : top + patch, left : left + patch] = 0.0
    probs = probabilities(model, batch)
    base = probs[0]
    target = int(base.argmax()) if target is None else int(target)
    drops = (base[target] - probs[1:, target]).astype(np.float32)
    total = np.zeros((SIZE, SIZE), np.float64)
    count = np.zeros((SIZE, SIZE), np.float64)
    for (top, left), drop in zip(positions, drops):
        total[top : top + patch, left : left + patch] += drop
        count[top : top + patch, left : left + patch] += 1
    return Occlusion(
        target=target,
        base_probability=float(base[target]),
        patch=patch,
        positions=positions,
        drops=drops,
        map=(total / np.maximum(count, 1)).astype(np.float32),
    )


def occlusion_overlay(pixels: np.ndarray, drops: np.ndarray, scale: int = 8) -> np.ndarray:
    """The digit in grey with the occlusion map on top: red where hiding lowers the class's probability, blue where it raises it."""
    grey = np.asarray(pixels, dtype=np.float32)
    if grey.max() <= 1.0:
        grey = grey * 255.0
    return saliency_overlay(grey, drops, scale=scale)
