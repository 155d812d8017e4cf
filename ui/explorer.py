"""Streamlit pieces of the Explore page: selection state, digit tiles, the sample detail panel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from mnist_core import gallery
from mnist_core.analysis import Analysis, is_cached, prefetch
from mnist_core.charts import class_probability_figure, embedding_figure
from mnist_core.data import Split
from mnist_core.saliency import SALIENCY_METHOD, saliency, saliency_overlay
from ui import charts, inside
from ui.idle import browser_idle
from ui.selection import cell_from_selection, indices_from_points

TRUE, PRED, SHOW, SORT, PAGE = "explore_true", "explore_pred", "explore_show", "explore_sort", "explore_page"
SUBSET, SAMPLE, CONTEXT = "explore_subset", "explore_sample", "explore_context"
SEEN_CELL, SEEN_MAP, SEEN_QUERY = "_explore_seen_cell", "_explore_seen_map", "_explore_seen_query"
BANK_DRAWN = "_explore_bank_drawn"  # the model whose page this session's browser has been sent without its bank
BANK_SPLIT = "train"  # the nearest-neighbour bank: the training images through the model
BANK_TICK = "_explore_bank_tick"  # when `_await_bank` last ran (time.monotonic())
BANK_POLL_S = 1.0
SHOW_OPTIONS = ("Errors", "All")
TILE_COLUMNS = 6
NEIGHBOURS = 5  # one row in the detail panel
PROBS_WIDTH = 210  # CSS pixels: the detail's right-hand column in a 1400-pixel window
SAMPLE_ANCHOR = "sample-detail"  # the detail heading's id, which a shared link scrolls to
# Fixed sizes make the matrix square-ish and let a browser test find cell (t, p) by arithmetic.
CONFUSION_ROW_HEIGHT = 35
CONFUSION_INDEX_WIDTH = 76  # wide enough for the corner's "true \ pred"
CONFUSION_CELL_WIDTH = 44
CONFUSION_COLUMNS = {
    "_index": st.column_config.Column(width=CONFUSION_INDEX_WIDTH),
    **{str(d): st.column_config.Column(width=CONFUSION_CELL_WIDTH) for d in range(10)},
}


@st.cache_resource(max_entries=4, show_spinner=False)
def _map_figure(digest: str, split: str, checksum: str, version: str, _result: Analysis, _projection: np.ndarray):
    shown = gallery.map_points(_result)
    title = f"{len(shown):,} of {len(_result):,} {split} images"
    return embedding_figure(_projection, _result.labels, _result.predictions, shown, title=title)


def map_figure(result: Analysis, projection: np.ndarray | None = None, version: str = "PCA"):
    """The feature-map figure (PCA unless another map is given), built once per model, split and map `version`
    (a name that changes whenever the points do: ui/maps.py gives a stored map's file and modification time)."""
    points = result.projection if projection is None else projection
    return _map_figure(result.digest, result.split, result.data_checksum, version, result, points)


@st.cache_data(max_entries=256, show_spinner=False)
def _saliency(digest: str, split: str, index: int, digit: int, _model, _image) -> np.ndarray:
    return saliency(_model, _image, digit)


def start(context: tuple[str, str]) -> None:
    """Initialise the page's state; a new model or split drops the sample and map selection made for the old one."""
    defaults = {TRUE: None, PRED: None, SHOW: "Errors", SORT: "confidence", PAGE: 1, SUBSET: None, SAMPLE: None}
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    if st.session_state.get(CONTEXT) != context:
        st.session_state[CONTEXT] = context
        st.session_state[SUBSET] = None
        st.session_state[SAMPLE] = None
        st.session_state[PAGE] = 1


def apply_cell(cells: Sequence) -> None:
    """A newly selected confusion cell (t, p) becomes the gallery filter: exactly the samples in that cell."""
    cell = cell_from_selection(cells)
    if cell == st.session_state.get(SEEN_CELL):
        return
    st.session_state[SEEN_CELL] = cell
    if cell is not None:
        st.session_state[TRUE], st.session_state[PRED] = cell
        st.session_state[SHOW] = "Errors" if cell[0] != cell[1] else "All"
        st.session_state[SUBSET] = None


def apply_map(points: Sequence, seen_key: str = SEEN_MAP) -> None:
    """A new box or lasso selection on the map becomes the gallery's sample set (all of them, right or wrong).

    Each selectable chart passes its own `seen_key`, so one chart's unchanged selection does not undo another's.
    """
    chosen = indices_from_points(points)
    if chosen == st.session_state.get(seen_key):
        return
    st.session_state[seen_key] = chosen
    st.session_state[SUBSET] = chosen or None
    if chosen:
        st.session_state[TRUE] = st.session_state[PRED] = None
        st.session_state[SHOW] = "All"


def current_query() -> gallery.GalleryQuery:
    """The gallery query the filter widgets describe; a changed query goes back to page 1."""
    subset = st.session_state.get(SUBSET)
    query = gallery.GalleryQuery(
        true=st.session_state.get(TRUE),
        predicted=st.session_state.get(PRED),
        errors_only=st.session_state.get(SHOW) == "Errors",
        subset=tuple(subset) if subset else None,
        sort=st.session_state.get(SORT, "confidence"),
    )
    if st.session_state.get(SEEN_QUERY) != query:
        st.session_state[SEEN_QUERY] = query
        st.session_state[PAGE] = 1
    return query


def filters() -> None:
    """The gallery's filter, order and show widgets (their state lives in session_state)."""
    digits = [None, *range(10)]
    label = lambda d: "any" if d is None else str(d)  # noqa: E731
    a, b, c, d = st.columns([2, 2, 2, 3])  # the order's labels are the longest
    # None is "any"; Streamlit shows a None value as its placeholder, so the placeholder says "any" too.
    a.selectbox("True digit", digits, format_func=label, key=TRUE, placeholder="any")
    b.selectbox("Predicted digit", digits, format_func=label, key=PRED, placeholder="any")
    c.segmented_control("Show", SHOW_OPTIONS, key=SHOW)
    d.selectbox("Order", tuple(gallery.SORTS), format_func=gallery.SORTS.__getitem__, key=SORT)


def pager(total: int) -> int:
    """A page number input sized to `total` items; returns the page to show."""
    pages = gallery.page_count(total)
    st.session_state[PAGE] = min(max(int(st.session_state.get(PAGE) or 1), 1), pages)
    if pages == 1:
        return 1
    return int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key=PAGE))


def tiles(split: Split, indices: Sequence[int], captions: Sequence[str], key: str, scale: int = 3) -> int | None:
    """Enlarged digits in a grid, each with an Open button; returns the index whose button was pressed."""
    if len(indices) == 0:
        return None
    images = gallery.pixels(split, indices)
    opened = None
    columns = st.columns(TILE_COLUMNS)
    for position, (index, image, text) in enumerate(zip(indices, images, captions)):
        with columns[position % TILE_COLUMNS]:
            st.image(gallery.enlarge(image, scale), caption=text)
            if st.button(f"#{index}", key=f"{key}_{index}", help="Open this sample", width="stretch"):
                opened = int(index)
    return opened


def heading(split: Split, result: Analysis, index: int) -> None:
    """The sample detail's title and one line of what the model said."""
    given, predicted = int(result.labels[index]), int(result.predictions[index])
    st.subheader(f"Sample #{index} of the {split.name} split", anchor=SAMPLE_ANCHOR)
    st.caption(
        f"Given label {given}, predicted {predicted} with {result.confidence[index]:.1%}, loss {result.losses[index]:.3f}."
    )


def detail(checkpoint, split: Split, result: Analysis, bank_split: Split, bank: Analysis | None, index: int) -> None:
    """One sample, below its `heading`: the digit, its class probabilities, saliency for the predicted and given class,
    nearest training images (once `bank`, the training split's analysis, is there: None while it is computed in the
    background)."""
    given, predicted = int(result.labels[index]), int(result.predictions[index])
    pixels = gallery.pixels(split, [index])[0]
    left, right = st.columns([1, 2])
    left.image(gallery.enlarge(pixels, 6), caption=f"#{index}")
    with right:
        charts.chart(class_probability_figure(result.probabilities[index], true_label=given), "explore_probs", width=PROBS_WIDTH)
    right.caption(f"Red: the prediction; outlined: the given label {given}.")
    classes = [predicted] if predicted == given else [predicted, given]
    st.markdown(f"**Saliency** ({SALIENCY_METHOD}): red ink pushes towards the class, blue ink away from it.")
    columns = st.columns(len(classes))
    for column, digit in zip(columns, classes):
        role = "predicted" if digit == predicted else "given"
        attribution = _saliency(checkpoint.digest, split.name, index, digit, checkpoint.model, split.images[index : index + 1])
        column.image(saliency_overlay(pixels, attribution, scale=5), caption=f"towards {digit} ({role})")
    st.markdown("**Nearest training images** in the model's feature space (penultimate layer)")
    if bank is None:
        _await_bank(checkpoint, bank_split)
    else:
        _neighbours(result, index, bank_split, bank, classes, predicted)
    inside.panel(checkpoint, pixels, key="explore_inside", compact=True, on_request=True)


def prefetch_bank(checkpoint) -> None:
    """At the end of the page: start the neighbour bank's background pass, unless this is the first run that sends
    this model's page to the browser.

    The pass keeps both cores busy for a quarter of a minute, and beside it a browser drew a shared link's page
    in 10.5 s instead of 6.6 (docs/dynamics.md). So it starts from the session's next run, the visitor's first
    interaction, or from `_await_bank` once the browser is idle. A visitor who only reads the page costs no pass.
    A run trained by this version needs none: its folder holds the bank (`maps.outputs_folder`).
    """
    # The run that replaces the first drawing's stills with charts is not the visitor's doing (ui/charts.py).
    if st.session_state.get(BANK_DRAWN) == checkpoint.digest and not charts.redrawing():
        prefetch(checkpoint, BANK_SPLIT)
    st.session_state[BANK_DRAWN] = checkpoint.digest


@st.fragment(run_every=BANK_POLL_S)
def _await_bank(checkpoint, bank_split: Split) -> None:
    """Until the training set's features are there: say so, start them once the page is drawn (`prefetch_bank`),
    and redraw the page when they are there."""
    st.caption("The training set's features are being computed (once per model); the nearest images appear here by themselves.")
    if browser_idle(BANK_TICK, BANK_POLL_S) and st.session_state.get(BANK_DRAWN) == checkpoint.digest:
        prefetch(checkpoint, bank_split.name)  # no-op while it runs or once it is cached
    if is_cached(checkpoint, bank_split):
        st.rerun(scope="app")


def _neighbours(result: Analysis, index: int, bank_split: Split, bank: Analysis, classes: list[int], predicted: int) -> None:
    for digit in classes:
        role = "predicted" if digit == predicted else "given"
        near = gallery.neighbours(result, index, bank, digit, k=NEIGHBOURS)
        st.caption(f"Labelled {digit} ({role} class)")
        images = gallery.pixels(bank_split, near)
        st.image([gallery.enlarge(image, 2) for image in images], caption=[f"#{i}" for i in near])


def selected_sample(n: int) -> int | None:
    """The sample whose detail is open, if it exists in the current split."""
    index = st.session_state.get(SAMPLE)
    return index if isinstance(index, int) and 0 <= index < n else None


def open_sample(index: int | None) -> None:
    """Open a sample's detail panel (None leaves it as it is)."""
    if index is not None:
        st.session_state[SAMPLE] = int(index)


def as_list(values: np.ndarray) -> list[int]:
    """Plain ints for widget keys and captions."""
    return [int(v) for v in values]
