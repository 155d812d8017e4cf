"""Why the model said what it said: saliency, penultimate-layer embeddings, 2-D projection, nearest neighbours."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mnist_core.data import normalize
from mnist_core.evaluate import INFERENCE_BATCH
from mnist_core.model import as_input

# A black pixel after normalization: the "absence of ink" that integrated gradients starts from.
# Computed by `normalize` itself so that it equals, bit for bit, the background of any image made by it.
BLACK = float(normalize(torch.zeros(1, dtype=torch.uint8)))
SALIENCY_METHOD = "integrated gradients from a black image"
IG_STEPS = 32


def saliency(model: nn.Module, image: torch.Tensor, target: int, steps: int = IG_STEPS) -> np.ndarray:
    """Integrated gradients (black baseline) of logit `target` for one normalized image (1, 1, 28, 28) -> (28, 28).

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
        x = image.detach().clone().float().cpu()
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
