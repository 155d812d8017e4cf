"""Which 2-D map Explore draws: the one precomputed for this model and split (t-SNE), else PCA at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import streamlit as st

from mnist_core import maps
from mnist_core.analysis import Analysis
from mnist_core.catalog import BUNDLED_KEY, RUN_PREFIX
from mnist_core.pretrained import PRETRAINED_DIR
from ui.model_picker import current_source

BUNDLED_MAP, BUNDLED_MAP_INFO = PRETRAINED_DIR / "test_map.npy", PRETRAINED_DIR / "test_map.json"


@st.cache_resource(max_entries=8, show_spinner=False)
def _read_run_map(folder: str, modified_ns: int, n: int) -> np.ndarray | None:
    """A run's map.npy, read once per file version."""
    return maps.read_map(folder, n)


@st.cache_resource(max_entries=1, show_spinner=False)
def _read_bundled(modified_ns: int, n: int) -> np.ndarray | None:
    """The bundled model's shipped test map (float16 on disk), read once."""
    try:
        points = np.load(BUNDLED_MAP, allow_pickle=False)
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


def best_map(result: Analysis) -> tuple[np.ndarray, str, bool]:
    """(points, method, precomputed) for the chosen model and this split."""
    source = current_source()
    if source is not None and source.key == BUNDLED_KEY:
        info = _info(BUNDLED_MAP_INFO)
        modified = _modified(BUNDLED_MAP)
        # The shipped map is of the bundled checkpoint on the real MNIST test split, and of nothing else.
        if (
            modified is not None
            and info.get("digest") == result.digest
            and info.get("data_checksum") == result.data_checksum
            and result.split == "test"
        ):
            points = _read_bundled(modified, len(result))
            if points is not None:
                return points, info.get("method", maps.TSNE), True
    elif source is not None and source.key.startswith(RUN_PREFIX):
        folder = source.path.parent
        info = _info(folder / maps.SUMMARY_FILE)
        modified = _modified(folder / maps.MAP_FILE)
        if modified is not None and info.get("split") == result.split:
            points = _read_run_map(str(folder), modified, len(result))
            if points is not None:
                return points, info.get("map_method", maps.TSNE), True
    return result.projection, maps.PCA, False


def caption(method: str, precomputed: bool) -> str:
    """What the map shows and, for PCA, why."""
    what = f"{method} of the penultimate layer, coloured by true digit, errors ringed. Box or lasso points to list them below."
    if precomputed:
        return what
    return (
        what + " PCA because no better map was precomputed for this model and split: "
        "`python -m mnist_core analyze --checkpoint RUN_DIR --out RUN_DIR` makes a t-SNE one."
    )
