"""Why the model said what it said about one image: integrated-gradients saliency and its overlay."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mnist_core.data import normalize, normalized
from mnist_core.model import as_input

# A black pixel after normalization: the "absence of ink" that integrated gradients starts from.
# Computed by `normalize` itself so that it equals, bit for bit, the background of any image made by it.
BLACK = float(normalize(torch.zeros(1, dtype=torch.uint8)))
SALIENCY_METHOD = "integrated gradients from a black image"
IG_STEPS = 32


def saliency(model: nn.Module, image: torch.Tensor, target: int, steps: int = IG_STEPS) -> np.ndarray:
    """Integrated gradients (black baseline) of logit `target` for one image (1, 1, 28, 28) -> (28, 28).

    Positive values are ink that pushes the model towards `target`, negative values ink that pushes away.
    By construction the attributions sum (up to the Riemann error of `steps`) to
    logit(image) - logit(black), and an all-black image gets exactly zero.
    """
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if tuple(image.shape) != (1, 1, 28, 28):
        raise ValueError(f"saliency expects one image of shape (1, 1, 28, 28), got {tuple(image.shape)}")
    if not 0 <= int(target) < 10:
        raise ValueError(f"target must be a class 0-9, got {target}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    # The caller may sit inside inference_mode (Streamlit callbacks, predict helpers): gradients need it off.
    with torch.inference_mode(False), torch.enable_grad():
        x = normalized(image.detach()).clone().float().cpu()
        baseline = torch.full_like(x, BLACK)
        # Midpoint rule: one batched forward/backward over all interpolation steps.
        alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
        path = baseline + alphas.view(-1, 1, 1, 1) * (x - baseline)
        path = as_input(path, device).requires_grad_(True)
        try:
            logits = model(path)
            grads = torch.autograd.grad(logits[:, int(target)].sum(), path)[0]
        finally:
            model.train(was_training)
        attribution = (x - baseline).squeeze() * grads.detach().float().cpu().mean(dim=0).squeeze()
    return attribution.numpy().astype(np.float32)


def saliency_overlay(pixels: np.ndarray, attribution: np.ndarray, scale: int = 8) -> np.ndarray:
    """RGB (28*scale, 28*scale, 3) uint8: the digit in grey, red where ink supports the class, blue where it opposes it.

    Colour strength is |attribution| relative to this map's largest value, so two maps are compared by pattern, not size.
    """
    grey = np.asarray(pixels, dtype=np.float32) / 255.0 * 0.6
    peak = float(np.abs(attribution).max())
    strength = np.abs(attribution) / peak if peak > 0 else np.zeros_like(attribution)
    strength = np.clip(strength, 0.0, 1.0)[..., None]
    colour = np.where((attribution > 0)[..., None], np.array([0.86, 0.15, 0.15]), np.array([0.13, 0.4, 0.9]))
    rgb = grey[..., None] * (1 - strength) + colour * strength
    image = (np.clip(rgb, 0.0, 1.0) * 255).round().astype(np.uint8)
    return image.repeat(scale, axis=0).repeat(scale, axis=1)
