"""Whether the visitor's browser has finished drawing the page, told by a fragment's timed reruns."""

from __future__ import annotations

import time

import streamlit as st


def browser_idle(tick_key: str, poll_s: float) -> bool:
    """Whether this timed rerun of a fragment (`st.fragment(run_every=poll_s)`) came on time.

    The browser asks for the rerun from a timer, which fires only when its main thread is free: one that comes late
    says the page is still being drawn. `tick_key` keeps, in session state, when the fragment last ran."""
    now, last = time.monotonic(), st.session_state.get(tick_key)
    st.session_state[tick_key] = now
    return last is not None and now - last < 1.5 * poll_s
