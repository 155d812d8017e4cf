"""Streamlit pieces of Explore's training dynamics: the story filters, the cartography map, a sample's curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from mnist_core import dynamics
from mnist_core.analysis import Analysis
from mnist_core.catalog import RUN_PREFIX
from mnist_core.charts import cartography_figure, sample_story_figure
from mnist_core.dynamics import CATEGORIES, Dynamics
from ui import charts, explorer
from ui.model_picker import current_source

STORY, LATE, FLIPS = "explore_story", "explore_story_k", "explore_story_n"
CARTOGRAPHY, SEEN_CARTOGRAPHY = "explore_cartography", "_explore_seen_cartography"
CARTOGRAPHY_WIDTH, CURVE_WIDTH = 940, 326  # CSS pixels in a 1400-pixel window: the page's width, the detail's
# A story is how predictions move between epochs: one epoch tells none (every category would be empty or vacuous).
MIN_EPOCHS = 2
LABELS = {
    "learned late": "Learned late",
    "forgotten": "Forgotten",
    "never learned": "Never learned",
    "flipped": "Flipped",
}


@st.cache_resource(max_entries=4, show_spinner=False)
def _load(path: str, modified_ns: int, checksum: str, _labels: np.ndarray) -> Dynamics | None:
    """One read per file version and split, shared by all sessions (the arrays are only read)."""
    return dynamics.load_run_dynamics(Path(path).parent, _labels)


def current(split_name: str, result: Analysis) -> Dynamics | None:
    """The chosen run's recorded dynamics for this split, or None (the bundled model, an older run, the train split)."""
    source = current_source()
    if source is None or not source.key.startswith(RUN_PREFIX) or split_name != "test":
        return None
    path = source.path.parent / dynamics.FILE_NAME
    try:
        modified = path.stat().st_mtime_ns
    except OSError:
        return None
    return _load(str(path), modified, result.data_checksum, result.labels)


def _tells(story: Dynamics | None) -> bool:
    return story is not None and story.epochs >= MIN_EPOCHS


def _changed() -> None:
    # A story usually holds samples the final model gets right: show them all, from the first page.
    if st.session_state.get(STORY):
        st.session_state[explorer.SHOW] = "All"
    st.session_state[explorer.PAGE] = 1


def filters(story: Dynamics | None) -> None:
    """The story filter (one of the four categories, or none) with its parameters, and every category's per-digit counts."""
    if not _tells(story):
        return
    st.session_state.setdefault(STORY, None)
    st.session_state.setdefault(LATE, min(2, story.epochs))
    st.session_state.setdefault(FLIPS, 2)
    st.session_state[LATE] = min(max(int(st.session_state[LATE]), 1), story.epochs)
    st.session_state[FLIPS] = min(max(int(st.session_state[FLIPS]), 1), max(story.epochs - 1, 1))
    a, b = st.columns([2, 1])
    a.selectbox(
        "Training story",
        (None, *CATEGORIES),
        format_func=lambda name: "any" if name is None else LABELS[name],
        key=STORY,
        placeholder="any",  # what Streamlit shows for the None value
        on_change=_changed,
        help="How each sample's prediction moved over the run's epochs.",
    )
    # Each parameter only next to its own category, so the page shows no control that does nothing.
    if st.session_state.get(STORY) == "learned late":
        b.number_input("First right at epoch ≥", 1, story.epochs, step=1, key=LATE, on_change=_changed)
    elif st.session_state.get(STORY) == "flipped":
        b.number_input("At least n flips", 1, max(story.epochs - 1, 1), step=1, key=FLIPS, on_change=_changed)
    st.dataframe(counts_table(story), key="explore_story_counts")


def counts_table(story: Dynamics) -> pd.DataFrame:
    """Rows: given digit 0-9 and the total; columns: the four categories (narrow enough for the gallery's column)."""
    k, n = st.session_state.get(LATE, 2), st.session_state.get(FLIPS, 2)
    names = {**LABELS, "learned late": f"Learned late (epoch ≥ {k})", "flipped": f"Flipped (≥ {n} times)"}
    columns = {names[name]: story.per_digit(story.category(name, k=k, n=n)) for name in CATEGORIES}
    table = pd.DataFrame(columns, index=[str(d) for d in range(10)])
    table.loc["total"] = table.sum()
    table.index.name = "given digit"
    return table


def restrict(story: Dynamics | None, indices: np.ndarray) -> np.ndarray:
    """The gallery's indices narrowed to the chosen category, in their order."""
    name = st.session_state.get(STORY)
    if not _tells(story) or name is None:
        return indices
    mask = story.category(name, k=st.session_state.get(LATE, 2), n=st.session_state.get(FLIPS, 2))
    return indices[mask[indices]]


def cartography(story: Dynamics | None) -> None:
    """The cartography scatter; a box or lasso selection fills the gallery, as the feature map's does."""
    if story is None:
        st.caption(
            "No training story for this model and split: runs record one for the test split after every epoch "
            "(the bundled model and older runs have none)."
        )
        return
    if not _tells(story):
        st.caption(
            f"No training story for this run: it recorded {story.epochs} epoch, and a story (its filters, the "
            f"cartography, each sample's curve) is how predictions move over {MIN_EPOCHS} or more."
        )
        return
    st.subheader("Training dynamics")
    correct = story.correct[-1]
    figure = cartography_figure(story.confidence, story.variability, correct, np.arange(len(story)))
    chosen = charts.chart(figure, CARTOGRAPHY, width=CARTOGRAPHY_WIDTH, on_select="rerun", selection_mode=("box", "lasso"))
    st.caption(
        f"Each test image over {story.epochs} epochs: mean (confidence) and spread (variability) of the probability "
        "of its given label (Swayamdipta et al., 2020). Low confidence: hard or mislabelled; high variability: ambiguous."
    )
    explorer.apply_map(chosen["selection"]["points"], seen_key=SEEN_CARTOGRAPHY)


def curve(story: Dynamics | None, index: int) -> None:
    """A sample's probabilities over epochs, in its detail panel."""
    if not _tells(story):
        return
    points = story.story(index)
    given = int(story.labels[index])
    charts.chart(
        sample_story_figure(points["epoch"], points["given"], points["final"], given, points["final_prediction"]),
        "explore_story_curve",
        width=CURVE_WIDTH,
    )
