"""Runs: every training run in one table, their curves overlaid, and one run in detail."""

import streamlit as st

from ui.entry import run_inside_entry_script

run_inside_entry_script()  # first: see ui/entry.py

from mnist_core import charts, summary  # noqa: E402
from mnist_core.errors import RunError  # noqa: E402
from mnist_core.runs import RunStore  # noqa: E402
from ui import messages  # noqa: E402
from ui.messages import show_error  # noqa: E402

CONFIRM = "runs_confirm_delete"  # id of the run whose deletion waits for a confirmation
OVERLAY_METRICS = ("test_acc", "test_loss", "train_acc", "train_loss")


def _ask_delete(run_id: str) -> None:
    st.session_state[CONFIRM] = run_id


def _cancel_delete() -> None:
    st.session_state[CONFIRM] = None


def _delete(run_id: str) -> None:
    st.session_state[CONFIRM] = None
    try:
        RunStore().delete(run_id)
    except RunError as exc:
        st.session_state["runs_delete_error"] = str(exc)
    else:
        st.toast(f"Deleted run {run_id}.", icon=":material/delete:")


st.title("Runs")
store = RunStore()
runs = store.list()
if not runs:
    st.info("No runs yet: start one on the Train page.", icon=":material/info:")
    st.page_link("pages/train.py", label="Train a model", icon=":material/model_training:")
    st.stop()

table = summary.runs_table(runs)
labels = {run_id: f"{run_id} ({status})" for run_id, status in zip(table["id"], table["status"], strict=True)}
st.dataframe(
    messages.public_table(table),
    hide_index=True,
    column_order=[
        "id",
        "kind",
        "status",
        "final_test_acc",
        "best_test_acc",
        "epochs",
        "duration_s",
        "started_at",
        "preset",
        "batch_size",
        "lr",
        "optimizer",
        "schedule",
        "augment",
        "train_images",
        "error",
    ],  # fmt: skip
    column_config={
        "id": st.column_config.TextColumn("Run", help="Start time and name: the run's folder under the runs folder."),
        "status": "Status",
        "kind": st.column_config.TextColumn("Kind", help="train: a training run; audit: a label audit (folds)"),
        "preset": "Preset",
        "epochs": st.column_config.TextColumn("Epochs", help="Completed / planned"),
        "batch_size": st.column_config.NumberColumn("Batch"),
        "lr": st.column_config.NumberColumn("LR", format="%g"),
        "optimizer": "Optimizer",
        "schedule": "Schedule",
        "augment": st.column_config.CheckboxColumn("Augment"),
        "train_images": st.column_config.NumberColumn("Train images", format="%,d", help="Empty: all 60,000"),
        "best_test_acc": st.column_config.NumberColumn("Best test acc", format="percent"),
        "final_test_acc": st.column_config.NumberColumn("Final test acc", format="percent"),
        "duration_s": st.column_config.NumberColumn("Duration", format="%.0f s"),
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm"),
        "error": st.column_config.TextColumn("Error", width="large"),
    },
)

st.header("Compare runs", divider="gray")
with_metrics = [run.id for run in runs if run.metrics()]
if not with_metrics:
    st.info("No run has finished an epoch yet, so there are no curves to compare.", icon=":material/info:")
else:
    chosen = st.multiselect("Runs to overlay", with_metrics, default=with_metrics[:2], format_func=labels.get, key="runs_overlay")
    metric = st.segmented_control(
        "Metric", OVERLAY_METRICS, default="test_acc", required=True, format_func=charts.METRIC_LABELS.get, key="runs_metric"
    )
    if chosen:
        st.plotly_chart(charts.overlay_figure({run_id: store.get(run_id).metrics() for run_id in chosen}, metric))

st.header("One run", divider="gray")
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="runs_detail")
run = store.get(run_id)
progress = run.progress()
if progress.get("status") == "failed":
    messages.error(progress.get("error") or "The run failed without a message.")
rows = run.metrics()
if rows:
    st.plotly_chart(charts.per_class_heatmap(rows))
else:
    st.info("This run has no completed epoch yet.", icon=":material/info:")
with st.expander("Recipe (config.json)"), show_error():
    st.json(run.config().to_dict())

actions = st.columns([1, 1, 1, 2])
csv = summary.metrics_csv(run)
actions[0].download_button(
    "Metrics CSV", csv or b"", file_name=f"{run.id}-metrics.csv", mime="text/csv", icon=":material/download:",
    disabled=csv is None, on_click="ignore",
)  # fmt: skip
# Read only when clicked: a checkpoint is 1.7 MB, and this page reruns on every widget change.
actions[1].download_button(
    "Checkpoint", run.checkpoint_path.read_bytes, file_name=f"{run.id}.pt", mime="application/octet-stream",
    icon=":material/download:", disabled=not run.has_checkpoint(), on_click="ignore",
)  # fmt: skip
actions[2].button(
    "Delete run…", icon=":material/delete:", on_click=_ask_delete, args=(run.id,), disabled=run.is_active(),
    help="Stop it on the Train page first." if run.is_active() else "Removes its folder: metrics and checkpoint.",
)  # fmt: skip
if st.session_state.get(CONFIRM) == run.id:
    st.warning(f"Delete run `{run.id}` with its metrics and checkpoint? This cannot be undone.", icon=":material/warning:")
    yes, no, _ = st.columns([1, 1, 4])
    yes.button("Yes, delete it", type="primary", on_click=_delete, args=(run.id,))
    no.button("Cancel", on_click=_cancel_delete)
if error := st.session_state.pop("runs_delete_error", None):
    messages.error(error)
