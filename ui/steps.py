"""The Train page's live step curves: smoothed training loss and accuracy between epochs, test points on top."""

from __future__ import annotations

import streamlit as st

from mnist_core import steps
from mnist_core.charts import step_curves_figure
from mnist_core.runs import Run


def live_curves(run: Run, rows: list[dict], epochs: int | None) -> None:
    """Both step figures side by side; nothing for an older run without steps.csv or before its first window."""
    recorded = steps.read(run.path)
    if not recorded:
        return
    left, right = st.columns(2)
    left.plotly_chart(step_curves_figure(recorded, rows, "loss", epochs), key=f"step_loss_{run.id}")
    right.plotly_chart(step_curves_figure(recorded, rows, "acc", epochs), key=f"step_acc_{run.id}")
    st.caption(
        f"Training loss and accuracy every {steps.EVERY} batches (faint), smoothed as TensorBoard does; "
        "red dots: the test set after each epoch."
    )
