"""Why the model said what it said: saliency, penultimate-layer embeddings, 2-D projection, nearest neighbours."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mnist_core.data import normalize, normalized
from mnist_core.evaluate import INFERENCE_BATCH
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


@torch.inference_mode()
def embed(model: nn.Module, images: torch.Tensor, batch_size: int = INFERENCE_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (N, 128) and logits (N, 10) in one pass over images (uint8 pixels or normalized), in eval mode."""
    device = next(model.parameters()).device
    # Filled in place: per-batch results kept in a list would sit between the freed batch buffers
    # on the heap and keep it from being reused (+100-300 MB RSS over a 60,000-image pass).
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


def pca_2d(features: np.ndarray) -> np.ndarray:
    """Project features (N, D) onto their two principal components -> (N, 2) float32, with deterministic signs."""
    if len(features) == 0:
        return np.empty((0, 2), np.float32)
    mean = features.mean(axis=0, dtype=np.float64)
    # The D x D covariance is tiny (128 x 128), so eigh on it beats an SVD of the N x D data. It is summed
    # in float64 over slices, so no float64 copy of all the features (61 MB for the training set) is made.
    scatter = sum(chunk.T @ chunk for chunk in _float64_slices(features)) - len(features) * np.outer(mean, mean)
    _, vectors = np.linalg.eigh(scatter)
    components = vectors[:, ::-1][:, :2]
    # An eigenvector's sign is arbitrary; fixing it keeps the map from flipping between runs.
    signs = np.sign(components[np.abs(components).argmax(axis=0), [0, 1]])
    components = components * np.where(signs == 0, 1.0, signs)
    offset = mean @ components
    return np.concatenate([chunk @ components - offset for chunk in _float64_slices(features)]).astype(np.float32)


def _float64_slices(array: np.ndarray, rows: int = 8192):
    for start in range(0, len(array), rows):
        yield array[start : start + rows].astype(np.float64)


def nearest(query: np.ndarray, bank: np.ndarray, k: int = 8, candidates: np.ndarray | None = None) -> np.ndarray:
    """Indices into `bank` (M, D) of the k rows closest to `query` (D,) in Euclidean distance, closest first.

    `candidates` (a boolean mask or an index array over the bank) restricts the search,
    for example to the training images of one class, or to every image but the query itself.
    """
    pool = np.arange(len(bank)) if candidates is None else np.asarray(candidates)
    if pool.dtype == bool:
        pool = np.flatnonzero(pool)
    if len(pool) == 0 or k <= 0:
        return np.empty(0, dtype=np.int64)
    distances = ((bank[pool] - query[None, :]) ** 2).sum(axis=1)
    k = min(k, len(pool))
    closest = np.argpartition(distances, k - 1)[:k]
    # Ties (duplicate images) are ordered by index so results are reproducible.
    order = np.lexsort((pool[closest], distances[closest]))
    return pool[closest[order]].astype(np.int64)


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
