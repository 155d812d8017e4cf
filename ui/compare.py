"""Streamlit pieces of Explore's model comparison: the "compare with" picker, agreement table, per-digit bars, disagreements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from mnist_core.analysis import Analysis, analyze
from mnist_core.catalog import available_models
from mnist_core.charts import compare_per_class_figure
from mnist_core.compare import CELLS, Comparison
from mnist_core.data import Split
from ui import charts, explorer
from ui.messages import show_error
from ui.model_picker import current_source, load_source

COMPARE, TABLE, CELL = "explore_compare", "explore_compare_table", "explore_compare_cell"
SEEN = "_explore_seen_compare_cell"
ROWS, COLUMNS = ("A right", "A wrong"), ("B right", "B wrong")
CELL_LABELS = {"both_right": "both right", "a_only": "only A right", "b_only": "only B right", "both_wrong": "both wrong"}
DISAGREEMENTS_SHOWN = 24
PER_CLASS_WIDTH = 560  # CSS pixels: the chart's column in a 1400-pixel window


def picker() -> str | None:
    """The "compare with" select box over every other catalogue model; returns the chosen key or None."""
    current = current_source()
    sources = [source for source in available_models() if current is None or source.key != current.key]
    labels = {source.key: source.label for source in sources}
    if st.session_state.get(COMPARE) not in labels:
        st.session_state[COMPARE] = None  # a model deleted since, or the one now explored
    return st.selectbox(
        "Compare with",
        (None, *labels),
        format_func=lambda key: "none (pick a second model)" if key is None else labels[key],
        key=COMPARE,
        placeholder="none (pick a second model)",  # what Streamlit shows for the None value
        help="A second model (B) on the same split: where they agree, where only one is right.",
    )


def section(split: Split, result: Analysis) -> Comparison | None:
    """The comparison with the picked model, drawn; None when none is picked."""
    st.subheader("Compare two models")
    key = picker()
    if key is None:
        _select_cell(None)
        return None
    (source,) = [source for source in available_models() if source.key == key]
    comparison = None
    with show_error(stop=False):
        other = load_source(source)
        with st.spinner(f"Running {source.label} over the {len(split):,} {split.name} images…"):
            comparison = Comparison(result, analyze(other, split))
    if comparison is None:
        return None
    st.caption(f"A: the model picked in the sidebar; B: {source.label}.")
    table_column, chart_column = st.columns([2, 3])
    with table_column:
        event = st.dataframe(
            agreement_table(comparison), key=TABLE, on_select="rerun", selection_mode="single-cell", width="stretch"
        )
        st.caption("Select a cell to list exactly its samples in the gallery.")
        _select_cell(_cell_from(event["selection"]["cells"]))
    with chart_column:
        charts.chart(compare_per_class_figure(comparison.per_class()), "explore_compare_per_class", width=PER_CLASS_WIDTH)
    disagreements = comparison.disagreements
    st.markdown(f"**{len(disagreements):,} samples where A and B predict different digits** (dataset order).")
    shown = explorer.as_list(disagreements[:DISAGREEMENTS_SHOWN])
    explorer.open_sample(explorer.tiles(split, shown, [comparison.caption(i) for i in shown], key="disagree"))
    return comparison


def agreement_table(comparison: Comparison) -> pd.DataFrame:
    """The 2 x 2 counts: rows A right / wrong, columns B right / wrong."""
    counts = comparison.counts()
    values = [[counts[CELLS[(a, b)]] for b in (True, False)] for a in (True, False)]
    return pd.DataFrame(values, index=pd.Index(ROWS, name="A \\ B"), columns=list(COLUMNS))


def _cell_from(cells) -> str | None:
    """The agreement cell name of a single-cell selection [(row position, column name)], or None."""
    if not cells:
        return None
    row, column = cells[0]
    try:
        a_right = ROWS[int(row)] == "A right"
    except (TypeError, ValueError, IndexError):
        return None
    if column not in COLUMNS:
        return None
    return CELLS[(a_right, column == "B right")]


def _select_cell(cell: str | None) -> None:
    if cell == st.session_state.get(SEEN):
        return
    st.session_state[SEEN] = cell
    st.session_state[CELL] = cell
    st.session_state[explorer.PAGE] = 1
    if cell is not None:
        st.session_state[explorer.SHOW] = "All"  # a cell of right answers holds no errors


def restrict(comparison: Comparison | None, indices: np.ndarray) -> np.ndarray:
    """The gallery's indices narrowed to the selected agreement cell, in their order."""
    cell = st.session_state.get(CELL)
    if comparison is None or cell is None:
        return indices
    return indices[comparison.cell(cell)[indices]]


def note(comparison: Comparison | None) -> None:
    """A line above the gallery naming the agreement cell it is limited to."""
    cell = st.session_state.get(CELL)
    if comparison is not None and cell is not None:
        st.info(f"Limited to the samples {CELL_LABELS[cell]} (A against B).", icon=":material/compare:")
