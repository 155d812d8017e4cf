"""The robustness report: a model's test accuracy when its digits are corrupted, kind by kind and severity by severity.

Corruptions are made on tensors by the what-if probes' own functions (mnist_core.probes),
deterministically (fixed seeds and directions), so a report is a fact about a checkpoint
and a split: it is cached by checkpoint digest and data checksum, in memory and on disk
($MNIST_LAB_CACHE_DIR/robustness, as the analysis cache does).

`clean` is the accuracy on the whole split (what `evaluate` reports). Each corruption is
measured on every SAMPLE_STRIDE-th image (2,500 of the 10,000 test digits, from both of
MNIST's test halves alike): 24 full passes would take minutes on 2 shared cores, and at
99% accuracy 2,500 digits still pin a corrupted accuracy down to about +-0.4%.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnist_core import probes
from mnist_core.analysis import CACHE_DIR_ENV, DEFAULT_CACHE_DIR
from mnist_core.checkpoint import Checkpoint
from mnist_core.data import Split, normalize
from mnist_core.evaluate import evaluate, predict_logits
from mnist_core.files import write_json_atomic
from mnist_core.model import prepare

# Bump when a corruption or a severity changes: old reports then simply stop matching.
CACHE_VERSION = 1
SAMPLE_STRIDE = 4
CHUNK = 2000  # images corrupted at a time: bounded memory (6 MB of floats) on a small server
NOISE_SEED = 15
OCCLUSION_SEED = 16

# The severities, in each corruption's own unit (see UNITS); the first is the mildest.
SEVERITIES: dict[str, tuple[float, ...]] = {
    "rotation": (15.0, 30.0, 45.0, 60.0),
    "shift": (2.0, 4.0, 6.0),
    "scale": (0.5, 0.75, 1.25, 1.5),
    "noise": (0.1, 0.2, 0.4),
    "blur": (0.5, 1.0, 1.5),
    "thickness": (-1.0, 1.0, 2.0),
    "occlusion": (6.0, 10.0, 14.0),
}
UNITS = {
    "rotation": "degrees, alternately either way",
    "shift": "pixels, alternately right, down, left, up",
    "scale": "size factor about the centre",
    "noise": "standard deviation of Gaussian noise (1 = full ink)",
    "blur": "Gaussian blur sigma in pixels",
    "thickness": "pooling steps: negative thins strokes, positive thickens them",
    "occlusion": "side of a black square at a random place in the central 20x20",
}


def _alternating(n: int, offset: int) -> torch.Tensor:
    """+1/-1 (or 0) per image in a fixed cycle: corruptions that have a direction use every direction equally."""
    return torch.tensor([(1, 0, -1, 0)[(i + offset) % 4] for i in range(n)], dtype=torch.float32)


def corrupt(pixels: torch.Tensor, kind: str, severity: float, first: int = 0) -> torch.Tensor:
    """Ink (N, 1, 28, 28) corrupted by `kind` at `severity`; `first` is the index of the first image in the split.

    Directions and random draws depend on each image's index in the split, never on how it is chunked.
    """
    n = len(pixels)
    index = torch.arange(first, first + n)
    if kind == "rotation":
        sign = torch.where(index % 2 == 0, 1.0, -1.0)
        return probes.warp(pixels, severity * sign, 1.0, 0.0, 0.0)
    if kind == "shift":
        offsets = index % 4
        dx = torch.tensor([1.0, 0.0, -1.0, 0.0])[offsets] * severity
        dy = torch.tensor([0.0, 1.0, 0.0, -1.0])[offsets] * severity
        return probes.warp(pixels, 0.0, 1.0, dx, dy)
    if kind == "scale":
        return probes.warp(pixels, 0.0, severity, 0.0, 0.0)
    if kind == "noise":
        return probes.add_noise(pixels, severity, seed=NOISE_SEED * 100_003 + first)
    if kind == "blur":
        return probes.blur(pixels, severity)
    if kind == "thickness":
        return probes.restroke(pixels, severity).clamp(0.0, 1.0)
    if kind == "occlusion":
        side = int(severity)
        out = pixels.clone()
        generator = np.random.default_rng(OCCLUSION_SEED)
        corners = generator.integers(4, 24 - side + 1, size=(first + n, 2))[first:]
        for k, (top, left) in enumerate(corners):
            out[k, :, top : top + side, left : left + side] = 0.0
        return out
    raise ValueError(f"unknown corruption {kind!r}; use one of {', '.join(SEVERITIES)}")


def accuracy_under(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, kind: str, severity: float) -> float:
    """Accuracy on uint8 `images` with every one corrupted by `kind` at `severity`."""
    correct = 0
    for start in range(0, len(images), CHUNK):
        ink = images[start : start + CHUNK].float() / 255.0
        logits = predict_logits(model, normalize(corrupt(ink, kind, severity, first=start)))
        correct += int((logits.argmax(dim=1) == labels[start : start + CHUNK]).sum())
    return correct / len(images) if len(images) else 0.0


def compute_report(model: torch.nn.Module, split: Split, on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The uncached report: {"clean": accuracy, "corruptions": {kind: [{"severity": s, "accuracy": a}, ...]}}."""
    model = prepare(copy.deepcopy(model), torch.device("cpu"))  # a private copy: the caller's may be shared
    clean = evaluate(model, split.images, split.labels).accuracy
    images, labels = split.images[::SAMPLE_STRIDE], split.labels[::SAMPLE_STRIDE]
    total = sum(len(levels) for levels in SEVERITIES.values())
    done = 0
    corruptions: dict[str, list[dict[str, float]]] = {}
    for kind, levels in SEVERITIES.items():
        corruptions[kind] = []
        for severity in levels:
            corruptions[kind].append({"severity": severity, "accuracy": accuracy_under(model, images, labels, kind, severity)})
            done += 1
            if on_progress is not None:
                on_progress(done, total)
    return {"clean": clean, "corruptions": corruptions}


def cache_dir() -> Path:
    """Where reports are kept on disk: $MNIST_LAB_CACHE_DIR/robustness, else ./.cache/robustness."""
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR).expanduser() / "robustness"


def cache_path(digest: str, split: Split, directory: Path | None = None) -> Path:
    """The file one report is stored in."""
    return (directory or cache_dir()) / f"v{CACHE_VERSION}-{digest[:24]}-{split.name}-{split.checksum[:16]}.json"


_memory: dict[tuple, dict[str, Any]] = {}
_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}


def cached_report(checkpoint: Checkpoint, split: Split) -> dict[str, Any] | None:
    """The stored report for this checkpoint and split, or None when it has not been computed."""
    key = (checkpoint.digest, split.name, split.checksum)
    with _lock:
        if key in _memory:
            return _memory[key]
    report = _read(cache_path(checkpoint.digest, split))
    if report is not None:
        with _lock:
            _memory[key] = report
    return report


def robustness_report(
    checkpoint: Checkpoint, split: Split, on_progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """The report for `checkpoint` on `split`: from memory, else from disk, else computed (and stored)."""
    key = (checkpoint.digest, split.name, split.checksum)
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    # Sessions asking for the same report wait for the first one's computation instead of repeating it.
    with key_lock:
        report = cached_report(checkpoint, split)
        if report is not None:
            return report
        report = compute_report(checkpoint.model, split, on_progress)
        path = cache_path(checkpoint.digest, split)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, report, durable=False)  # a cache: it can always be recomputed
        except OSError:
            pass  # a read-only disk just means no disk cache
        with _lock:
            _memory[key] = report
        return report


def _read(path: Path) -> dict[str, Any] | None:
    """A stored report, or None when missing, unreadable or not of the current shape."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or set(report.get("corruptions", {})) != set(SEVERITIES):
        return None
    return report


def weakest(report: dict[str, Any], count: int = 3) -> list[tuple[str, float, float]]:
    """The corruptions that cost the most accuracy at their harshest severity: (kind, severity, accuracy), worst first."""
    worst = []
    for kind, rows in report["corruptions"].items():
        row = min(rows, key=lambda r: r["accuracy"])
        worst.append((kind, float(row["severity"]), float(row["accuracy"])))
    return sorted(worst, key=lambda item: item[2])[:count]


def format_report(report: dict[str, Any]) -> str:
    """A readable table: the clean accuracy, then one line per corruption with its accuracy at each severity."""
    lines = [f"clean      {report['clean']:.2%}"]
    for kind, rows in report["corruptions"].items():
        cells = "  ".join(f"{row['severity']:g}: {row['accuracy']:.2%}" for row in rows)
        lines.append(f"{kind:<10} {cells}  ({UNITS.get(kind, '')})")
    return "\n".join(lines)
