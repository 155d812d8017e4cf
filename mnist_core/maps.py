"""The 2-D map of a model's penultimate features, computed off the request path and stored beside the model.

t-SNE (openTSNE) separates the digits where PCA mixes them: on the bundled model's 10,000 test
features the 10-nearest-neighbour accuracy of the 2-D points is 0.757 with PCA and 0.99 with
t-SNE (bench/map_quality.py). t-SNE takes tens of seconds, so a trainer (at the end of its run) or
`python -m mnist_core analyze` computes it and leaves it in a folder:

    probabilities.npy   (N, 10) float32  softmax of the model on the split
    features.npy        (N, 128) float32 penultimate layer
    map.npy             (N, 2) float32   the 2-D map (t-SNE; PCA below 1,000 points or without openTSNE)
    analysis.json       n, accuracy, map_method, seconds, split, data_checksum, digest (of the checkpoint)

A page reads the map with `stored_map`; `analysis.analyze` reads the probabilities and features with
`stored_outputs` instead of running the model again, when the digest and data checksum say they are this
checkpoint's on this split. Where nothing was precomputed (an old run, the training
split, an uploaded checkpoint) it shows PCA at once, says so, and has `launch.start_map` compute
the map in a short child process into `map_folder(...)`, the cache, never in the server.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_core.embedding import pca_2d
from mnist_core.files import write_atomic, write_json_atomic

if TYPE_CHECKING:
    from mnist_core.data import Split

PROBABILITIES_FILE, FEATURES_FILE, MAP_FILE, SUMMARY_FILE = "probabilities.npy", "features.npy", "map.npy", "analysis.json"
TSNE, PCA = "t-SNE", "PCA"
# Below this many points PCA's map is readable and instant, while t-SNE's fixed cost (seconds) would dominate
# a short run's end; t-SNE also needs several times its perplexity (30) in points.
TSNE_MIN_POINTS = 1000


# Half of openTSNE's default 250 + 500 iterations: on the bundled model's 10,000 test features the 10-NN
# accuracy of the map is the same (0.9939 against 0.9941; 250 + 500, 125 + 250 and 100 + 150 measured side by
# side, docs/dynamics.md), and the end of every run waits for it.
EXAGGERATION_ITERATIONS, ITERATIONS = 125, 250


def tsne_2d(features: np.ndarray, threads: int = 1, seed: int = 0) -> np.ndarray:
    """openTSNE's t-SNE of features (N, D) -> (N, 2) float32 (perplexity 30, PCA initialisation, fixed seed)."""
    from openTSNE import TSNE

    embedding = TSNE(
        n_components=2,
        perplexity=30,
        initialization="pca",
        early_exaggeration_iter=EXAGGERATION_ITERATIONS,
        n_iter=ITERATIONS,
        n_jobs=threads,
        random_state=seed,
        verbose=False,
    )
    return np.asarray(embedding.fit(np.asarray(features, dtype=np.float32)), dtype=np.float32)


def compute_map(features: np.ndarray, threads: int = 1) -> tuple[np.ndarray, str]:
    """The best map this installation can make: t-SNE, else PCA; returns (points, method)."""
    if len(features) < TSNE_MIN_POINTS:
        return pca_2d(features), PCA
    try:
        return tsne_2d(features, threads=threads), TSNE
    except ImportError:
        return pca_2d(features), PCA


def write_analysis(
    out_dir: str | Path, model, split: Split, threads: int = 1, digest: str | None = None, with_map: bool = True
) -> dict[str, Any]:
    """One pass of `model` over a split plus its map (unless not `with_map`), written to `out_dir`; returns the
    summary (also analysis.json).

    `digest` is the content digest of the checkpoint that holds `model`: with it, the folder's outputs stand in
    for running the model again (`stored_outputs`).
    """
    from mnist_core.analysis import analyze_images

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = analyze_images(model, split.images, split.labels)
    points, method = compute_map(arrays["features"], threads=threads) if with_map else (None, None)
    for name, array in (
        (PROBABILITIES_FILE, arrays["probabilities"]),
        (FEATURES_FILE, arrays["features"]),
        *([(MAP_FILE, points)] if with_map else []),
    ):
        write_atomic(out / name, lambda handle, a=array: np.save(handle, a.astype(np.float32), allow_pickle=False), durable=True)
    correct = arrays["probabilities"].argmax(axis=1) == arrays["labels"]
    summary = {
        "n": len(correct),
        "accuracy": float(correct.mean()) if len(correct) else 0.0,
        "map_method": method,
        "seconds": round(time.perf_counter() - started, 2),
        "split": split.name,
        "data_checksum": split.checksum,
        **({"digest": digest} if digest else {}),
    }
    write_json_atomic(out / SUMMARY_FILE, summary)
    return summary


def read_map(folder: str | Path, n: int) -> np.ndarray | None:
    """A stored (n, 2) map as float32, or None when it is missing, unreadable or for another number of samples."""
    try:
        points = np.load(Path(folder) / MAP_FILE, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if points.shape != (n, 2) or not np.isfinite(points).all():
        return None
    return points.astype(np.float32)


def stored_map(folder: str | Path, split: str, n: int) -> tuple[np.ndarray, str] | None:
    """(points, method) that `write_analysis` left in `folder` for this split and size, or None."""
    try:
        info = json.loads((Path(folder) / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("split") != split:
        return None
    points = read_map(folder, n)
    return None if points is None else (points, str(info.get("map_method", TSNE)))


def outputs_folder(run_folder: str | Path, split_name: str) -> Path:
    """Where a run folder keeps its end-of-run outputs of a split: the test split's (with the map) in the folder
    itself, as `analyze --out` writes them, the training split's (the explorer's neighbour bank) in `train/`."""
    return Path(run_folder) if split_name == "test" else Path(run_folder) / split_name


def describes(folder: str | Path, digest: str, split: Split) -> bool:
    """Whether `folder`'s analysis.json says its outputs are this checkpoint's (by content digest) on this split's data."""
    return is_of(folder, digest, split.name, split.checksum)


def is_of(folder: str | Path, digest: str, split_name: str, data_checksum: str) -> bool:
    """`describes`, by the split's name and data checksum (what an `Analysis` keeps of its split)."""
    try:
        info = json.loads((Path(folder) / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and (info.get("digest"), info.get("split"), info.get("data_checksum")) == (
        digest,
        split_name,
        data_checksum,
    )


def stored_outputs(folder: str | Path, digest: str, split: Split) -> dict[str, np.ndarray] | None:
    """The probabilities (N, 10) and features (N, 128) that `write_analysis` left in `folder` for exactly this
    checkpoint (by content digest) on exactly this split's data, or None."""
    folder = Path(folder)
    if not describes(folder, digest, split):
        return None
    arrays = {}
    for name, file, width in (("probabilities", PROBABILITIES_FILE, 10), ("features", FEATURES_FILE, 128)):
        try:
            array = np.load(folder / file, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if array.shape != (len(split), width) or not np.isfinite(array).all():
            return None
        arrays[name] = array.astype(np.float32, copy=False)
    return arrays


def map_folder(digest: str, split: str, data_checksum: str) -> Path:
    """Where the background map of one checkpoint (by content digest) on one split's data is kept."""
    from mnist_core.analysis import cache_dir

    return cache_dir().parent / "maps" / f"{digest[:24]}-{split}-{data_checksum[:16]}"


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 10, folds: int = 5) -> float:
    """Map quality: the mean k-nearest-neighbour accuracy over `folds` stratified folds of the 2-D points."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), points, labels, cv=splitter).mean())
