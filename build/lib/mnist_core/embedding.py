"""The model's feature space: a 2-D map of penultimate features, and nearest neighbours in it."""

from __future__ import annotations

import numpy as np


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
