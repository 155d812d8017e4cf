"""Explore's view as a link: its state read from and written to the URL's query string (st.query_params).

    /explore?model=<run id|bundled>&split=test&sample=<index>&compare=<run id|bundled>
             &true=<digit>&pred=<digit>&show=errors|all&story=<category>&k=<epoch>&n=<flips>&cell=<agreement cell>

A fresh session that opens such a link gets that view: the entry script applies `model` before the
sidebar's picker is drawn (`adopt_model`), the page applies the rest before its widgets (`adopt_view`)
and the sample once the split's size is known (`adopt_sample`). A value that does not name something
that exists gives a message and the default, never an exception. Every later run writes the view
back (`remember`), so the address bar is always a link to what is on screen.
"""

from __future__ import annotations

import streamlit as st

from mnist_core.catalog import BUNDLED_KEY, RUN_PREFIX, available_models
from mnist_core.compare import CELLS
from mnist_core.dynamics import CATEGORIES
from mnist_core.runs import is_run_id
from ui import charts, explorer
from ui import compare as compare_ui
from ui import dynamics as story_ui
from ui.model_picker import MODEL_KEY

PAGE = "explore"
SPLIT_KEY = "explore_split"
READ_MODEL, READ_VIEW, PENDING_SAMPLE, NOTES = "_link_model_read", "_link_view_read", "_link_sample", "_link_notes"
SHOWN_VIEW_NOTES, SHOWN_SAMPLE_NOTES = "_link_notes_shown", "_link_sample_notes_shown"
SCROLL_PENDING = "_link_scroll"
# Scrolls to the sample detail's heading, which sits far down the page; it waits for the heading to be drawn.
_SCROLL_SCRIPT = f"""<script>
(() => {{
    let tries = 0;
    const go = () => {{
        const heading = document.getElementById("{explorer.SAMPLE_ANCHOR}");
        if (heading) heading.scrollIntoView({{block: "start"}});
        else if (++tries < 100) setTimeout(go, 100);
    }};
    go();
}})();
</script>"""
SHOW_VALUES = {"errors": "Errors", "all": "All"}
STORIES = {name.replace(" ", "-"): name for name in CATEGORIES}


def _note(message: str) -> None:
    st.session_state.setdefault(NOTES, []).append(message)


def model_key(value: str) -> str | None:
    """The catalogue key a link's model value names ('bundled' or a run id), or None for garbage."""
    if value == BUNDLED_KEY:
        return BUNDLED_KEY
    return RUN_PREFIX + value if is_run_id(value) else None


def link_value(key: str | None) -> str | None:
    """A catalogue key as a link writes it: 'bundled' or the bare run id."""
    if key is None:
        return None
    return key[len(RUN_PREFIX) :] if key.startswith(RUN_PREFIX) else key


def _available(value: str, what: str) -> str | None:
    key = model_key(value)
    if key is not None and key in {source.key for source in available_models()}:
        return key
    _note(f"The link's {what} {value[:60]!r} is not available (unknown, deleted or not finished): showing the default.")
    return None


def adopt_model(page) -> None:
    """In the entry script, before the sidebar: a fresh session following an Explore link picks the link's model."""
    if getattr(page, "url_path", None) != PAGE or st.session_state.get(READ_MODEL):
        return
    st.session_state[READ_MODEL] = True
    value = st.query_params.get("model")
    if value:
        key = _available(value, "model")
        if key is not None:
            st.session_state[MODEL_KEY] = key


def split_default() -> str | None:
    """The Split control's default: none once a link has set its value (Streamlit warns when a widget gets both)."""
    return None if SPLIT_KEY in st.session_state else "test"


def adopt_view() -> None:
    """At the top of Explore, once per session: split, comparison and filters from the link; then show its messages."""
    if not st.session_state.get(READ_VIEW):
        st.session_state[READ_VIEW] = True
        _adopt(dict(st.query_params))
    _show_until_read(SHOWN_VIEW_NOTES, st.session_state.pop(NOTES, None))


def _show_until_read(key: str, fresh: list[str] | None) -> None:
    """Show this run's messages about the link (`fresh`), or again those of the run before while the page is only
    redrawn for its charts (ui/charts.py): they go at the visitor's first interaction."""
    if fresh:
        st.session_state[key] = fresh
    elif not charts.redrawing():
        st.session_state.pop(key, None)
    for message in st.session_state.get(key, []):
        st.warning(message, icon=":material/link_off:")


def _adopt(params: dict[str, str]) -> None:
    def choice(name: str, allowed: dict):
        value = params.get(name)
        if value is None:
            return None
        if value not in allowed:
            _note(f"The link's {name}={value[:40]!r} is not one of {', '.join(allowed)}: ignored.")
            return None
        return allowed[value]

    digits = {str(d): d for d in range(10)}
    split = choice("split", {"test": "test", "train": "train"})
    if split is not None:
        st.session_state[SPLIT_KEY] = split
    for name, key in (("true", explorer.TRUE), ("pred", explorer.PRED)):
        digit = choice(name, digits)
        if digit is not None:
            st.session_state[key] = digit
    show = choice("show", SHOW_VALUES)
    if show is not None:
        st.session_state[explorer.SHOW] = show
    story = choice("story", STORIES)
    if story is not None:
        st.session_state[story_ui.STORY] = story
    for name, key in (("k", story_ui.LATE), ("n", story_ui.FLIPS)):
        number = choice(name, {str(i): i for i in range(1, 1000)})
        if number is not None:
            st.session_state[key] = number
    cell = choice("cell", {name: name for name in CELLS.values()})
    if cell is not None:
        st.session_state[compare_ui.CELL] = cell
    if params.get("compare"):
        key = _available(params["compare"], "comparison model")
        if key is not None:
            st.session_state[compare_ui.COMPARE] = key
    if params.get("sample") is not None:
        st.session_state[PENDING_SAMPLE] = params["sample"]


def adopt_sample(n: int) -> None:
    """Open the link's sample once the split's size `n` is known (after the page's state is initialised)."""
    value = st.session_state.pop(PENDING_SAMPLE, None)
    bad = value is not None and not (isinstance(value, str) and value.isdigit() and int(value) < n)
    message = f"The link's sample {str(value)[:20]!r} is not an index of this split (0 to {n - 1:,}): no sample opened."
    _show_until_read(SHOWN_SAMPLE_NOTES, [message] if bad else None)
    if value is None or bad:
        return
    explorer.open_sample(int(value))
    st.session_state[SCROLL_PENDING] = True


def drawing_sample_first() -> bool:
    """Whether this run is a session's first drawing of a link's sample. Its gallery's 24 digits (about a quarter of a
    second of the browser's work) then come with the charts' redraw, once the browser is idle (ui/charts.py): the page
    scrolls to the sample's detail, which is what the link was shared for, and draws it sooner."""
    return bool(st.session_state.get(SCROLL_PENDING)) and not charts.interactive()


def scroll_to_linked_sample() -> None:
    """After a link opened a sample, once: scroll the page to its detail, which is what the link was shared for."""
    if st.session_state.pop(SCROLL_PENDING, False):
        st.html(_SCROLL_SCRIPT, unsafe_allow_javascript=True)


def remember() -> None:
    """Write the view on screen into the address bar: the model, the split and what is shown always (so a shared link
    names them even if the defaults change), every other part only where it is set."""
    state = st.session_state
    story = state.get(story_ui.STORY)
    values = {
        "model": link_value(state.get(MODEL_KEY)),
        "split": state.get(SPLIT_KEY) or "test",
        "sample": state.get(explorer.SAMPLE),
        "compare": link_value(state.get(compare_ui.COMPARE)),
        "true": state.get(explorer.TRUE),
        "pred": state.get(explorer.PRED),
        "show": {v: k for k, v in SHOW_VALUES.items()}.get(state.get(explorer.SHOW)),
        "story": story.replace(" ", "-") if story else None,
        "k": state.get(story_ui.LATE) if story == "learned late" else None,
        "n": state.get(story_ui.FLIPS) if story == "flipped" else None,
        "cell": state.get(compare_ui.CELL) if state.get(compare_ui.COMPARE) else None,
    }
    params = {name: str(value) for name, value in values.items() if value is not None}
    if params != dict(st.query_params):
        st.query_params.from_dict(params)
