"""Show a user's mistake as a message, never as a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from mnist_core.errors import MnistLabError
from mnist_core.limits import public_message


@contextlib.contextmanager
def show_error(stop: bool = False) -> Iterator[None]:
    """Turn a MnistLabError raised inside the block into st.error; with stop=True also end the page there."""
    try:
        yield
    except MnistLabError as exc:
        st.error(public_message(exc), icon=":material/error:")  # no server paths on a hosted instance
        if stop:
            st.stop()
