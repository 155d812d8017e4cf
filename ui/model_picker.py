"""The shared model picker and the cached loading of the chosen checkpoint."""

from __future__ import annotations

import streamlit as st

from mnist_core.catalog import ModelSource, available_models
from mnist_core.checkpoint import Checkpoint, file_digest, load_checkpoint
from ui.messages import show_error

MODEL_KEY = "model_key"


@st.cache_resource(max_entries=8, show_spinner=False)
def _load(path: str, digest: str) -> Checkpoint:
    """One loaded model per checkpoint content, shared by all sessions (the model is only read)."""
    return load_checkpoint(path)


def model_picker() -> ModelSource | None:
    """Sidebar select box over the model catalogue; remembers the choice in this session."""
    sources = available_models()
    if not sources:
        st.sidebar.info("No model yet: train one on the Train page.", icon=":material/info:")
        return None
    keys = [source.key for source in sources]
    if st.session_state.get(MODEL_KEY) not in keys:
        st.session_state[MODEL_KEY] = keys[0]
    labels = {source.key: source.label for source in sources}
    key = st.sidebar.selectbox("Model", keys, format_func=labels.__getitem__, key=MODEL_KEY)
    return sources[keys.index(key)]


def current_source() -> ModelSource | None:
    """The model chosen in the sidebar (the first available one before any choice)."""
    sources = available_models()
    chosen = st.session_state.get(MODEL_KEY)
    for source in sources:
        if source.key == chosen:
            return source
    return sources[0] if sources else None


def current_model() -> Checkpoint | None:
    """The chosen model, loaded once per checkpoint content; None when there is no model at all."""
    source = current_source()
    if source is None:
        return None
    return load_source(source)


def require_model() -> Checkpoint:
    """The chosen model for a page that needs one; without any model the page says where to get one and stops."""
    with show_error(stop=True):
        checkpoint = current_model()
    if checkpoint is None:
        st.info("There is no model yet: train one on the Train page.", icon=":material/info:")
        st.stop()
    return checkpoint


def load_source(source: ModelSource) -> Checkpoint:
    """Any catalogue model, loaded once per checkpoint content and shared by all sessions."""
    return _load(str(source.path), file_digest(source.path))
