"""Streamlit pieces of the robustness report: one model's chart, computed on demand with a progress bar, then cached."""

from __future__ import annotations

import streamlit as st

from mnist_core.catalog import ModelSource, available_models
from mnist_core.charts import robustness_figure
from mnist_core.checkpoint import Checkpoint
from mnist_core.data import Split
from mnist_core.robustness import SAMPLE_STRIDE, SEVERITIES, UNITS, cached_report, robustness_report, weakest
from ui.model_picker import load_source

NONE = "(none)"


def second_model(current_key: str | None) -> Checkpoint | None:
    """A select box of the other models in the catalogue; the chosen one, loaded once per checkpoint content."""
    others: list[ModelSource] = [source for source in available_models() if source.key != current_key]
    if not others:
        return None
    labels = {source.key: source.label for source in others}
    key = st.selectbox("Compare with", [NONE, *labels], format_func=lambda k: labels.get(k, k), key="robustness_other")
    chosen = next((source for source in others if source.key == key), None)
    return None if chosen is None else load_source(chosen)


def report_panel(checkpoint: Checkpoint, split: Split, title: str, key: str) -> None:
    """The model's robustness chart; when not computed yet, a button that computes it (once per checkpoint)."""
    report = cached_report(checkpoint, split)
    if report is None:
        st.caption(
            f"Not computed yet for {title}: {sum(map(len, SEVERITIES.values()))} passes over {-(-len(split) // SAMPLE_STRIDE):,} "
            "test digits, under a minute on 2 CPU cores, then kept for every visitor."
        )
        if not st.button(f"Compute the report for {title}", key=f"{key}_compute", icon=":material/play_arrow:"):
            return
        bar = st.progress(0.0, text="Corrupting the test digits…")
        report = robustness_report(
            checkpoint, split, on_progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total} corruptions")
        )
        bar.empty()
    st.plotly_chart(robustness_figure(report, title=title), key=f"{key}_chart")
    worst = ", ".join(f"{kind} {severity:g} ({accuracy:.0%})" for kind, severity, accuracy in weakest(report))
    st.caption(f"Clean test accuracy {report['clean']:.2%}. Hardest: {worst}.")


def units_note() -> None:
    """What each corruption's severity means."""
    with st.expander("What the severities mean"):
        st.markdown("\n".join(f"- **{kind}**: {unit}" for kind, unit in UNITS.items()))
