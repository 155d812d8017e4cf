"""Every message a page shows about the server's state: a user's mistake, a run's error, where the data is.

On a hosted instance (MNIST_LAB_HOSTED=1) these never show a server path: each function
here passes its text through `public_message`, the one redaction, so a page that shows
dynamic text through this module cannot leak the server's layout. Fixed text needs no care.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pandas as pd
import streamlit as st

from mnist_core.errors import MnistLabError
from mnist_core.limits import public_message


def error(text: object, icon: str = ":material/error:") -> None:
    """An error box."""
    st.error(public_message(str(text)), icon=icon)


def warning(text: object, icon: str = ":material/warning:") -> None:
    """A warning box."""
    st.warning(public_message(str(text)), icon=icon)


def success(text: object, icon: str = ":material/check_circle:") -> None:
    """A success box."""
    st.success(public_message(str(text)), icon=icon)


def info(text: object, icon: str = ":material/info:") -> None:
    """An info box."""
    st.info(public_message(str(text)), icon=icon)


def markdown(text: object) -> None:
    """Markdown text."""
    st.markdown(public_message(str(text)))


def caption(text: object) -> None:
    """Small grey text."""
    st.caption(public_message(str(text)))


def public_table(frame: pd.DataFrame, columns: tuple[str, ...] = ("error",)) -> pd.DataFrame:
    """A table whose free-text columns (a run's error) are redacted like any message."""
    frame = frame.copy()
    for column in columns:
        if column in frame:
            frame[column] = frame[column].map(lambda value: public_message(value) if isinstance(value, str) else value)
    return frame


@contextlib.contextmanager
def show_error(stop: bool = False) -> Iterator[None]:
    """Turn a MnistLabError raised inside the block into an error box; with stop=True also end the page there."""
    try:
        yield
    except MnistLabError as exc:
        error(exc)
        if stop:
            st.stop()
