"""A training process's live figures (speed, elapsed time, ETA) and its Stop button, as the Train page shows
them for a run and for a label audit."""

from __future__ import annotations

import streamlit as st

from mnist_core import summary
from mnist_core.runs import Run


def live_figures(run: Run, live: summary.LiveProgress, key: str, stop_help: str, stopping: str) -> None:
    """Samples/s, elapsed, ETA and a Stop button (which asks the run to stop after its current batch)."""
    figures = st.columns(4)
    figures[0].metric("Samples/s", f"{live.samples_per_s:,.0f}" if live.samples_per_s else "–")
    figures[1].metric("Elapsed", summary.format_duration(live.elapsed_s))
    figures[2].metric("ETA", summary.format_duration(live.eta_s) if live.epoch else "–")
    with figures[3]:
        if st.button("Stop", icon=":material/stop_circle:", key=key, help=stop_help):
            run.request_stop()
        if run.stop_requested():
            st.caption(stopping)
