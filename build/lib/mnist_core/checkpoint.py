"""Checkpoints: weights plus metadata, written atomically, read with `weights_only=True`."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from mnist_core.errors import CheckpointError
from mnist_core.files import write_atomic
from mnist_core.model import MnistCNN

FORMAT = "mnist-lab-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "model.pt"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the model in eval mode on the CPU, its metadata, and its content hash."""

    model: MnistCNN
    meta: dict[str, Any]
    digest: str
    path: Path


def build_meta(**fields: Any) -> dict[str, Any]:
    """Metadata every checkpoint carries, plus the caller's fields (config, metrics, data checksum)."""
    from mnist_core import __version__

    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mnist_core_version": __version__,
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        **fields,
    }


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """Write durably and atomically (files.write_atomic): a process killed at any moment leaves the previous checkpoint or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": MnistCNN.architecture,
        "state_dict": state,
        "meta": meta,
    }
    try:
        write_atomic(path, lambda handle: torch.save(payload, handle), durable=True)
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports a failed write as a RuntimeError
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "the write failed"
        raise CheckpointError(
            f"Could not save the checkpoint {path.name} ({why}): the disk may be full or the folder read-only. "
            "Free some space or fix the folder's permissions, then train again."
        ) from exc
    return path


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes: the cache key for anything derived from a checkpoint."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint safely; anything that is not a readable MnistCNN checkpoint raises CheckpointError."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {name}: the file does not exist. Train a model or pick another file.")
    content = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise CheckpointError(f"{name} is not a readable checkpoint (corrupt, truncated or not a PyTorch file).") from exc
        raise CheckpointError(
            f"{name} was refused: it holds Python objects other than tensors and plain data "
            "(only weights are ever loaded, never code). Use a checkpoint written by MNIST Lab."
        ) from exc
    except Exception as exc:  # torch.load on garbage raises almost anything (KeyError, EOFError, ...)
        raise CheckpointError(f"{name} is not a readable checkpoint (corrupt or truncated file).") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a PyTorch file but not an MNIST Lab checkpoint.")
    if payload.get("architecture") != MnistCNN.architecture:
        raise CheckpointError(f"{name} holds a {payload.get('architecture')!r} model; this app runs {MnistCNN.architecture}.")
    model = MnistCNN()
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{name}: its weights do not fit {MnistCNN.architecture} (other layers or shapes).") from exc
    model.eval()
    meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
    return Checkpoint(model=model, meta=meta, digest=hashlib.sha256(content).hexdigest(), path=path)
