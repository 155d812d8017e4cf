"""A model's view of one split, computed once per checkpoint content and split, then cached.

Everything the error explorer shows (predictions, per-sample loss, penultimate
features, the PCA map) derives from one pass over the split. That pass costs
seconds on a CPU, so its result is kept in memory (a small LRU) and on disk
(one .npz per checkpoint digest, split and data checksum, written atomically),
and a rerun, a second session or a restarted server reuses it. A run folder
already holds its test-split outputs (the trainer's end-of-run analysis,
mnist_core/maps.py), so a finished run is never passed over again.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from mnist_core import maps
from mnist_core.allocator import release_free_memory
from mnist_core.checkpoint import Checkpoint
from mnist_core.data import Split
from mnist_core.embedding import pca_2d
from mnist_core.evaluate import Evaluation, embed
from mnist_core.files import write_atomic
from mnist_core.model import prepare

CACHE_DIR_ENV = "MNIST_LAB_CACHE_DIR"
DEFAULT_CACHE_DIR = ".cache"
# Bump when the arrays or their meaning change: old files then simply stop matching.
CACHE_VERSION = 1
MEMORY_ENTRIES = 4
# A model's test + train analyses take about 36 MB on disk; keep the most recently written few.
DISK_ENTRIES = 12
_ARRAYS = ("probabilities", "labels", "losses", "features")
BACKGROUND_NICE = 10  # the nice trainers and background maps get too (launch.TRAINER_NICE)


@dataclass(frozen=True, eq=False)
class Analysis:
    """One checkpoint's outputs on one split: probabilities, labels, per-sample loss, features (and their PCA, on demand)."""

    digest: str
    split: str
    data_checksum: str
    probabilities: np.ndarray  # (N, 10) float32
    labels: np.ndarray  # (N,) int64, the given labels
    losses: np.ndarray  # (N,) float32 cross-entropy per sample
    features: np.ndarray  # (N, 128) float32 penultimate layer

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def projection(self) -> np.ndarray:
        """(N, 2) float32 PCA of the features: the map drawn where no better one is stored. Computed when first asked
        for (0.1 s for 60,000 images), as a stored map makes it unnecessary."""
        return pca_2d(self.features)

    @cached_property
    def predictions(self) -> np.ndarray:
        """The predicted class of each sample."""
        return self.probabilities.argmax(axis=1)

    @cached_property
    def confidence(self) -> np.ndarray:
        """The probability of the predicted class."""
        return self.probabilities.max(axis=1)

    @cached_property
    def evaluation(self) -> Evaluation:
        """Accuracy, loss, confusion matrix and per-class metrics (the engine's Evaluation)."""
        return Evaluation(self.probabilities, self.labels, float(self.losses.mean()) if len(self) else 0.0)


def from_outputs(probabilities: np.ndarray, features: np.ndarray, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """The arrays of an Analysis from a model's stored outputs, without running it."""
    labels_np = labels.numpy().astype(np.int64)
    given = probabilities[np.arange(len(labels_np)), labels_np]
    # Cross-entropy is -log p(given); the clip keeps a float32 probability that underflowed to 0 finite.
    losses = -np.log(np.maximum(given, np.finfo(np.float32).tiny))
    return {
        "probabilities": probabilities,
        "labels": labels_np,
        "losses": losses.astype(np.float32),
        "features": features,
    }


def analyze_images(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """The uncached computation: one pass of the model over the images."""
    # A private copy in the fast CPU layout: the caller's model may be shared between sessions.
    model = prepare(copy.deepcopy(model), torch.device("cpu"))
    features, logits = embed(model, images)
    logits_t = torch.from_numpy(logits)
    labels_t = labels.long()
    losses = torch.nn.functional.cross_entropy(logits_t, labels_t, reduction="none") if len(labels_t) else torch.empty(0)
    return {
        "probabilities": torch.softmax(logits_t, dim=1).numpy().astype(np.float32),
        "labels": labels_t.numpy().astype(np.int64),
        "losses": losses.numpy().astype(np.float32),
        "features": features.astype(np.float32),
    }


def cache_dir() -> Path:
    """Where analyses are kept on disk: $MNIST_LAB_CACHE_DIR, else ./.cache."""
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR).expanduser() / "analysis"


def cache_path(digest: str, split: str, data_checksum: str, directory: Path | None = None) -> Path:
    """The file one analysis is stored in (under `directory`, default cache_dir())."""
    return (directory or cache_dir()) / f"v{CACHE_VERSION}-{digest[:24]}-{split}-{data_checksum[:16]}.npz"


_memory: OrderedDict[tuple, Analysis] = OrderedDict()
_lock = threading.Lock()  # guards _memory and _key_locks
_key_locks: dict[tuple, threading.Lock] = {}


def analyze(checkpoint: Checkpoint, split: Split, use_disk: bool = True, directory: Path | None = None) -> Analysis:
    """The analysis of `checkpoint` on `split`: from memory, else from disk, else computed (and stored)."""
    key = (checkpoint.digest, split.name, split.checksum)
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    # Sessions asking for the same analysis wait for the first one's pass instead of repeating it.
    with key_lock:
        with _lock:
            if key in _memory:
                _memory.move_to_end(key)
                return _memory[key]
        path = cache_path(*key, directory=directory)
        arrays = _read(path, len(split)) if use_disk else None
        if arrays is None and use_disk:
            stored = maps.stored_outputs(maps.outputs_folder(checkpoint.path.parent, split.name), checkpoint.digest, split)
            arrays = None if stored is None else from_outputs(stored["probabilities"], stored["features"], split.labels)
        if arrays is None:
            arrays = analyze_images(checkpoint.model, split.images, split.labels)
            release_free_memory()  # the pass's batch buffers, now free, would otherwise stay with the process
            if use_disk:
                _write(path, arrays)
        result = Analysis(checkpoint.digest, split.name, split.checksum, **arrays)
        with _lock:
            _memory[key] = result
            while len(_memory) > MEMORY_ENTRIES:
                _memory.popitem(last=False)
        return result


def is_cached(checkpoint: Checkpoint, split: Split) -> bool:
    """Whether analyze() would answer without running the model (from memory, the disk cache or the run folder)."""
    key = (checkpoint.digest, split.name, split.checksum)
    with _lock:
        if key in _memory:
            return True
    return cache_path(*key).is_file() or maps.describes(
        maps.outputs_folder(checkpoint.path.parent, split.name), checkpoint.digest, split
    )


def prefetch(checkpoint: Checkpoint, split_name: str, data_dir: str | os.PathLike | None = None) -> threading.Thread | None:
    """Start analysing another split in a background thread (the explorer's nearest-neighbour bank), unless it is cached.

    Failures are left for the foreground call to meet and report; this only saves waiting.
    """
    from mnist_core.data import load_split, resolve_data_dir

    root = resolve_data_dir(data_dir)
    directory = cache_dir()

    def work() -> None:
        lower_thread_priority()  # first: torch's worker threads for this pass are started by this thread
        try:
            analyze(checkpoint, load_split(split_name, root, download=False), directory=directory)
        except Exception:  # noqa: BLE001 (the foreground call raises the same error with its message)
            pass

    key = (checkpoint.digest, split_name)
    with _lock:
        if any(k[:2] == key for k in _memory) or key in _prefetching:
            return None
        _prefetching.add(key)
    # Not a daemon (said outright: a thread started from a daemon, as Streamlit's script threads are, is one by
    # default). The interpreter then waits for the pass at exit; a daemon thread still inside torch when the
    # process ends makes it abort ("terminate called without an active exception", exit status 134).
    thread = threading.Thread(target=_run_then_forget, args=(work, key), name=f"analysis-{split_name}", daemon=False)
    thread.start()
    return thread


_prefetching: set[tuple[str, str]] = set()


def lower_thread_priority(by: int = BACKGROUND_NICE) -> bool:
    """Lower the CPU priority of the calling thread, and of the threads it starts from now on, by `by` nice steps
    (Linux nice is per thread, and inherited). A background pass then takes only the CPU that the reruns visitors
    wait for leave free. False where it cannot (not Linux)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + by, 19))
    except (AttributeError, OSError):
        return False
    return True


def _run_then_forget(work, key) -> None:
    try:
        work()
    finally:
        with _lock:
            _prefetching.discard(key)


def clear_memory() -> None:
    """Forget the in-memory analyses (the disk cache stays)."""
    with _lock:
        _memory.clear()


def _read(path: Path, n: int) -> dict[str, np.ndarray] | None:
    """The stored arrays, or None when the file is missing, unreadable or does not match the split."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in _ARRAYS}
    except (OSError, KeyError, ValueError, EOFError):
        return None
    if any(len(array) != n for array in arrays.values()):
        return None
    return arrays


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Store atomically (temporary file, then rename); a read-only disk just means no disk cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda handle: np.savez(handle, **arrays))
    except OSError:
        return
    _prune(path.parent)


def _prune(folder: Path, keep: int = DISK_ENTRIES) -> None:
    """Delete all but the `keep` most recently written analyses (no eviction would fill a small hosted disk)."""
    try:
        files = sorted(folder.glob("v*.npz"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
