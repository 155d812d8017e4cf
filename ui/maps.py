"""Which 2-D map Explore draws: the one precomputed for this model and split (t-SNE), else PCA at once while a child
process computes the better one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from mnist_core import launch, maps
from mnist_core.analysis import Analysis
from mnist_core.catalog import BUNDLED_KEY, RUN_PREFIX
from mnist_core.pretrained import TEST_MAP_INFO_PATH, TEST_MAP_PATH
from ui import messages
from ui.model_picker import current_source

PRECOMPUTED, COMPUTING, WAITING, FAILED, OFF, UNAVAILABLE = "precomputed", "computing", "waiting", "failed", "off", "unavailable"
WATCH_SECONDS = 3
_WHY_PCA = {
    COMPUTING: "PCA for now: a t-SNE map of this model and split is being computed in the background "
    "(a minute or two for 10,000 images on 2 cores); it replaces this one by itself.",
    WAITING: "PCA for now: another map is being computed on this server; this model's t-SNE map follows it "
    "and replaces this one by itself.",
    FAILED: "PCA, because computing a better map for this model and split failed on this server.",
    OFF: "PCA, because no better map was precomputed for this model and split, and this server computes none in the background.",
    UNAVAILABLE: "PCA, because no better map was precomputed for this model and split.",
}


@st.cache_resource(max_entries=8, show_spinner=False)
def _read_stored(folder: str, split: str, modified_ns: int, n: int) -> tuple[np.ndarray, str] | None:
    """A stored map (a run's, or one computed in the background), read once per file version."""
    return maps.stored_map(folder, split, n)


@st.cache_resource(max_entries=1, show_spinner=False)
def _read_bundled(modified_ns: int, n: int) -> np.ndarray | None:
    """The bundled model's shipped test map (float16 on disk), read once."""
    try:
        points = np.load(TEST_MAP_PATH, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return points.astype(np.float32) if points.shape == (n, 2) and np.isfinite(points).all() else None


def _info(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _modified(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@dataclass(frozen=True)
class ChosenMap:
    """The map Explore draws: its points, how they were made, PRECOMPUTED or why they are PCA, and a name for this
    version of the points (it changes whenever they do, so a figure built from them can be cached under it)."""

    points: np.ndarray
    method: str
    state: str
    version: str


def best_map(result: Analysis) -> ChosenMap:
    """The best map there is for the chosen model and this split: a stored one, else PCA (and a background job)."""
    source = current_source()
    if source is None:
        return ChosenMap(result.projection, maps.PCA, UNAVAILABLE, maps.PCA)
    if source.key == BUNDLED_KEY:
        info = _info(TEST_MAP_INFO_PATH)
        modified = _modified(TEST_MAP_PATH)
        # The shipped map is of the bundled checkpoint on the real MNIST test split, and of nothing else.
        if (
            modified is not None
            and info.get("digest") == result.digest
            and info.get("data_checksum") == result.data_checksum
            and result.split == "test"
        ):
            points = _read_bundled(modified, len(result))
            if points is not None:
                return ChosenMap(points, info.get("method", maps.TSNE), PRECOMPUTED, f"{TEST_MAP_PATH}@{modified}")
    elif source.key.startswith(RUN_PREFIX):
        stored = _stored(source.path.parent, result)
        if stored is not None:
            return stored
    folder = maps.map_folder(result.digest, result.split, result.data_checksum)
    stored = _stored(folder, result)
    if stored is not None:
        return stored
    return ChosenMap(result.projection, maps.PCA, launch.start_map(source.path, result.split, folder), maps.PCA)


def _stored(folder: Path, result: Analysis) -> ChosenMap | None:
    """The map `folder` holds of exactly `result`'s checkpoint (by content digest) and data: a run folder's model.pt
    may have been replaced since its end-of-run map was made, and an older analysis.json names no checkpoint."""
    if not maps.is_of(folder, result.digest, result.split, result.data_checksum):
        return None
    modified = _modified(folder / maps.MAP_FILE)
    stored = None if modified is None else _read_stored(str(folder), result.split, modified, len(result))
    return None if stored is None else ChosenMap(*stored, PRECOMPUTED, f"{folder}@{modified}")


def caption(method: str, state: str) -> str:
    """What the map shows and, for PCA, why."""
    what = f"{method} of the penultimate layer, coloured by true digit, errors ringed. Box or lasso points to list them below."
    if state == PRECOMPUTED:
        return what
    return what + " " + _WHY_PCA[state]


def follow(result: Analysis, state: str) -> None:
    """While the better map is computed in the background, look for it every few seconds and redraw the page once it
    is there; after a failure, say why."""
    folder = maps.map_folder(result.digest, result.split, result.data_checksum)
    if state in (COMPUTING, WAITING):
        _watch(folder, result)
    elif state == FAILED:
        messages.caption(f"Why: {launch.map_error(folder)}")


@st.fragment(run_every=WATCH_SECONDS)
def _watch(folder: Path, result: Analysis) -> None:
    source = current_source()
    if _stored(folder, result) is not None or source is None or launch.start_map(source.path, result.split, folder) == FAILED:
        st.rerun(scope="app")
