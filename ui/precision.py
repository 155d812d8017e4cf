"""The Train form's precision field."""

from __future__ import annotations

import streamlit as st

from mnist_core.config import PRECISIONS

HELP = (
    "fp32: full precision. bf16: bf16 autocast, faster only on CPUs with native bf16 (AVX-512 BF16 or AMX) "
    "and on GPUs; several times slower elsewhere. auto: bf16 where a short probe at the start measures it "
    "faster, else fp32. The run records the one it used."
)


def precision_select(key: str, default: str) -> None:
    """A select box over fp32, bf16 and auto, its value in st.session_state[key]."""
    st.selectbox("Precision", PRECISIONS, index=PRECISIONS.index(default), key=key, help=HELP)
