"""Robustness page: where each model breaks, under rotation, shift, scale, noise, blur, stroke thickness and occlusion."""

import streamlit as st

from ui.entry import run_inside_entry_script

run_inside_entry_script()  # first: see ui/entry.py

from mnist_core.data import load_split  # noqa: E402
from ui import robustness as ui  # noqa: E402
from ui.messages import show_error  # noqa: E402
from ui.model_picker import MODEL_KEY, require_model  # noqa: E402

st.title("Robustness")
st.caption(
    "Test accuracy when every test digit is rotated, shifted, scaled, blurred, made noisy, thinner or thicker, "
    "or partly hidden, at three or four severities each. Computed once per model, then cached."
)

checkpoint = require_model()
with show_error(stop=True):
    split = load_split("test")

with show_error(stop=True):
    other = ui.second_model(st.session_state.get(MODEL_KEY))
columns = st.columns(2) if other is not None else [st.container()]
with columns[0]:
    ui.report_panel(checkpoint, split, "this model (sidebar)", key="robustness_main")
if other is not None:
    with columns[1]:
        ui.report_panel(other, split, "the compared model", key="robustness_other")
ui.units_note()
