"""Explore's charts: still pictures in a session's first drawing, the interactive Plotly charts once its browser is idle.

Plotly's code costs a browser about a second before its first chart (mnist_core/stills.py), and on a shared link
that second held the page past 2 s. So until this session's browser has drawn a page, each chart is a still of the
same figure. At the end of the page `upgrade_when_idle` waits for the browser to be idle, has it load Plotly's code
with a blank chart at the foot of the page while the stills stay, waits again, then reruns the page with the charts.
Swapped at once, a still gave way to an empty box for the seconds the browser spent on Plotly's code.
A still selects nothing, so callers read an empty selection.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from mnist_core import stills
from ui.idle import browser_idle

INTERACTIVE = "_charts_interactive"  # True once this session's browser has drawn a page: charts from then on
LOADING = "_charts_loading"  # True once the browser has been sent the blank chart that loads Plotly's code
REDRAW = "_charts_redraw"  # True during the run that replaces the stills with charts
TICK = "_charts_tick"
WARM_UP = "charts_warm_up"
POLL_S = 0.25


def interactive() -> bool:
    """Whether this session draws interactive charts (its browser has drawn a page with stills)."""
    return bool(st.session_state.get(INTERACTIVE))


def chart(figure: go.Figure, key: str, width: int, still_name: tuple | None = None, **options) -> dict:
    """`st.plotly_chart(figure, key=key, **options)`, or a still of it `width` CSS pixels wide (the chart's usual width,
    so that the chart takes the still's place without moving the page) in a container keyed `<key>_still`.

    `still_name` names the figure's content where it is the same for every session (the map of a model and split):
    its still is then drawn once for all of them (the map's 10,000 points take about 0.05 s to draw)."""
    if interactive():
        return st.plotly_chart(figure, key=key, **options)
    title = figure.layout.title.text if figure.layout.title and figure.layout.title.text else "Chart"
    picture = stills.png(figure, width) if still_name is None else _shared_png(still_name, width, figure)
    with st.container(key=f"{key}_still"):
        st.image(picture, width="stretch", alt=f"{title}: a picture, until the interactive chart replaces it")
    return {"selection": {"points": [], "point_indices": [], "box": [], "lasso": []}}  # what an untouched chart returns


@st.cache_resource(max_entries=8, show_spinner=False)
def _shared_png(still_name: tuple, width: int, _figure: go.Figure) -> bytes:
    return stills.png(_figure, width)


def redrawing() -> bool:
    """Whether this run only replaces the stills with charts: the visitor did nothing, so what the page said to them on
    the run before (a shared link's messages) is still unread."""
    return bool(st.session_state.get(REDRAW))


def upgrade_when_idle() -> None:
    """At the end of a page that drew stills: once the browser is idle, rerun the page with interactive charts."""
    st.session_state.pop(REDRAW, None)  # the redraw, if this was it, is over
    if not interactive():
        _await_idle()


@st.fragment(run_every=POLL_S)
def _await_idle() -> None:
    idle = browser_idle(TICK, POLL_S)
    if st.session_state.get(LOADING):
        _blank_chart()  # drawn on every rerun of the fragment, or it would be taken off the page
        if idle:  # Plotly's code has loaded and run: the charts can take the stills' places
            st.session_state[INTERACTIVE] = True
            st.session_state[REDRAW] = True
            st.rerun(scope="app")
    elif idle:
        st.session_state[LOADING] = True
        _blank_chart()


def _blank_chart() -> None:
    """A chart without data, 10 pixels high: the browser loads Plotly's code (and a WebGL context) to draw it."""
    layout = dict(height=10, margin=dict(l=0, r=0, t=0, b=0), xaxis=dict(visible=False), yaxis=dict(visible=False))
    st.plotly_chart(
        go.Figure(go.Scattergl(x=[], y=[]), layout), key=WARM_UP, config={"displayModeBar": False, "staticPlot": True}
    )
