"""The model catalogue: every model the app can use, the bundled one first, then trained runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnist_core.errors import CheckpointError
from mnist_core.pretrained import PRETRAINED_PATH, pretrained_available
from mnist_core.runs import Run, RunStore

BUNDLED_KEY = "bundled"
RUN_PREFIX = "run:"
USABLE_STATUSES = ("finished", "stopped")


@dataclass(frozen=True)
class ModelSource:
    """A model the user can pick: a stable key, a label for menus, and its checkpoint file."""

    key: str
    label: str
    path: Path


def available_models(store: RunStore | None = None) -> list[ModelSource]:
    """The bundled model (when shipped), then each finished or stopped run with a checkpoint, newest first."""
    store = store or RunStore()
    sources = []
    if pretrained_available():
        sources.append(ModelSource(BUNDLED_KEY, "Bundled model (pretrained)", PRETRAINED_PATH))
    for run in store.list():
        progress = run.progress()
        if progress.get("status") in USABLE_STATUSES and run.has_checkpoint():
            sources.append(ModelSource(RUN_PREFIX + run.id, run_label(run, progress.get("test_acc")), run.checkpoint_path))
    return sources


def run_label(run: Run, accuracy: float | None) -> str:
    """A run as the pickers name it: its name, its test accuracy, when it started ("linked · 89.25% · Dec 02, 06:04").
    The name comes first because the sidebar's box shows about 28 characters, and the id's time stamp took 16."""
    created = run.created
    parts = [run.name, f"{created:%b %d, %H:%M}"] if created else [run.id]
    if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool):
        parts.insert(1, f"{accuracy:.2%}")
    return " · ".join(parts)


def source_for(key: str, store: RunStore | None = None) -> ModelSource:
    """Resolve a key from available_models() again (runs may have been deleted since)."""
    for source in available_models(store):
        if source.key == key:
            return source
    raise CheckpointError(f"The model {key!r} is no longer available (deleted, or still training). Pick another one.")
