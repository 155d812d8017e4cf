"""Train: pick a recipe, start a run in the background, and watch it learn.

The run store, not this session, says what is training: a reload, a second tab or
a trip to another page finds the same run and its progress.
"""

import streamlit as st

from ui.entry import run_inside_entry_script

run_inside_entry_script()  # first: see ui/entry.py

from mnist_core import charts, summary  # noqa: E402
from mnist_core.catalog import RUN_PREFIX  # noqa: E402
from mnist_core.config import OPTIMIZERS, PRESETS, SCHEDULES, TrainConfig  # noqa: E402
from mnist_core.data import dataset_present, resolve_data_dir  # noqa: E402
from mnist_core.errors import ConfigError, RunError  # noqa: E402
from mnist_core.launch import max_concurrent_runs, start_run  # noqa: E402
from mnist_core.limits import current_limits, fit_config  # noqa: E402
from mnist_core.model import DEVICES  # noqa: E402
from mnist_core.runs import Run, RunStore, validate_name  # noqa: E402
from ui import audit as audit_ui  # noqa: E402
from ui import messages  # noqa: E402
from ui import progress as progress_ui  # noqa: E402
from ui import steps as steps_ui  # noqa: E402
from ui.model_picker import MODEL_KEY  # noqa: E402
from ui.precision import precision_select  # noqa: E402

FIELDS = ("epochs", "batch_size", "lr", "label_smoothing", "optimizer", "schedule", "augment", "seed", "train_subset")
FIELDS += ("device", "threads", "precision")
PROBLEM = "train_problem"  # (field, message) of the last refused start
STARTED = "train_run_id"  # the run this session started last


def _key(preset: str, field: str) -> str:
    # One set of widgets per preset: choosing a preset shows its values, and edits to each preset are kept.
    return f"train_{preset}_{field}"


def _start(preset: str) -> None:
    """Start button callback: validate through TrainConfig, then launch; a refusal is shown under its field."""
    st.session_state[PROBLEM] = None
    values = {field: st.session_state[_key(preset, field)] for field in FIELDS}
    name = st.session_state[_key(preset, "name")].strip() or None
    try:
        config = TrainConfig.from_preset(preset, **values)
    except ConfigError as exc:
        st.session_state[PROBLEM] = (exc.field, str(exc))
        return
    try:
        if name:
            validate_name(name)
    except RunError as exc:
        st.session_state[PROBLEM] = ("name", str(exc))
        return
    try:
        run = start_run(config, data_dir=resolve_data_dir(), name=name)
    except ConfigError as exc:  # over this server's hosted-mode caps
        st.session_state[PROBLEM] = (exc.field, str(exc))
        return
    except RunError as exc:
        # Another run training is a wait ("start", cleared once it ends); a runs folder that cannot be written is an error.
        st.session_state[PROBLEM] = ("start" if RunStore().active() else "runs", str(exc))
        return
    st.session_state[STARTED] = run.id


def _use_model(run_id: str) -> None:
    st.session_state[MODEL_KEY] = RUN_PREFIX + run_id


def _problem(field: str) -> None:
    problem = st.session_state.get(PROBLEM)
    if problem and problem[0] == field:
        messages.error(problem[1])


def new_run_form() -> None:
    """The hyperparameters of TrainConfig, starting from a preset; values are checked only by TrainConfig."""
    preset = st.segmented_control(
        "Preset", list(PRESETS), key="train_preset", default="seed", required=True,
        help="seed: the classic recipe (Adam 1e-3, batch 64, 10 epochs). fast: one epoch of a one-cycle schedule with label smoothing, bf16 where faster: about 99.2%, in 5-35 s on 2 CPU cores.",
    )  # fmt: skip
    defaults = fit_config(TrainConfig.from_preset(preset))  # a hosted server's caps lower the preset's values
    if current_limits().hosted:
        st.caption(current_limits().summary())
    with st.form(f"train_form_{preset}", border=True):
        left, middle, right = st.columns(3)
        with left:
            st.number_input("Epochs", value=defaults.epochs, step=1, key=_key(preset, "epochs"))
            _problem("epochs")
            st.number_input("Batch size", value=defaults.batch_size, step=16, key=_key(preset, "batch_size"))
            _problem("batch_size")
            st.number_input(
                "Learning rate", value=defaults.lr, step=1e-4, format="%g", key=_key(preset, "lr"),
                help="The peak rate with the one-cycle schedule.",
            )  # fmt: skip
            _problem("lr")
            st.number_input(
                "Label smoothing", value=defaults.label_smoothing, step=0.05, format="%g",
                key=_key(preset, "label_smoothing"),
                help="The share of each target spread over all ten digits: 0 is plain cross-entropy.",
            )  # fmt: skip
            _problem("label_smoothing")
        with middle:
            st.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index(defaults.optimizer), key=_key(preset, "optimizer"))
            _problem("optimizer")
            st.selectbox("Schedule", SCHEDULES, index=SCHEDULES.index(defaults.schedule), key=_key(preset, "schedule"))
            _problem("schedule")
            st.selectbox("Device", DEVICES, index=DEVICES.index(defaults.device), key=_key(preset, "device"))
            _problem("device")
            precision_select(_key(preset, "precision"), defaults.precision)
            _problem("precision")
        with right:
            st.number_input(
                "Training images", value=defaults.train_subset, step=1000, placeholder="all 60,000",
                key=_key(preset, "train_subset"), help="Train on a fixed random subset: quicker, for trying things out.",
            )  # fmt: skip
            _problem("train_subset")
            st.number_input("Seed", value=defaults.seed, step=1, key=_key(preset, "seed"))
            _problem("seed")
            st.number_input(
                "CPU threads", value=defaults.threads, step=1, placeholder="one per physical core", key=_key(preset, "threads"),
                help="Empty: one per physical core. A trainer runs at a lower priority than the app, so visitors are served first.",
            )  # fmt: skip
            _problem("threads")
            # The right column has a fourth row free, level with Label smoothing and Precision.
            st.toggle(
                "Augment", value=defaults.augment, key=_key(preset, "augment"),
                help="Random shifts, rotations and stroke widths, drawn anew for every batch.",
            )  # fmt: skip
        st.text_input(
            "Run name", key=_key(preset, "name"), placeholder=f"{preset} (the run id adds the date and time)", max_chars=48
        )
        _problem("name")
        st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:", on_click=_start, args=(preset,))
    problem = st.session_state.get(PROBLEM)
    if problem and problem[0] == "start":
        messages.warning(problem[1], icon=":material/hourglass_top:")
    elif problem and problem[0] not in FIELDS + ("name",):
        messages.error(problem[1])


def charts_of(run: Run, rows: list[dict], epochs: int | None) -> None:
    """Loss and accuracy per epoch, and the per-digit accuracy of the latest epoch."""
    if not rows:
        st.info("The curves appear when the first epoch ends and the test set has been scored.", icon=":material/info:")
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.train_test_figure(rows, "loss", epochs), key=f"loss_{run.id}")
    right.plotly_chart(charts.train_test_figure(rows, "acc", epochs), key=f"acc_{run.id}")
    latest = rows[-1]
    st.plotly_chart(
        charts.per_class_figure(summary.per_class_accuracy(latest), f"Test accuracy per digit after epoch {latest['epoch']}"),
        key=f"per_class_{run.id}",
    )


def run_panel(run: Run) -> None:
    """Everything about one run: bars and figures while it trains, its outcome once it ended, and its curves."""
    if run.kind == "audit":
        audit_ui.audit_panel(run)
        return
    progress = run.progress()
    live = summary.live_progress(progress)
    rows = run.metrics()
    st.subheader(f"Run `{run.id}`: {live.status}")
    if live.active:
        st.progress(live.overall, text=live.overall_text)
        st.progress(live.in_epoch, text=live.in_epoch_text)
        if progress.get("step") == "analysing":
            st.info("Training done: computing the 2-D map and the analysis Explore needs.", icon=":material/scatter_plot:")
        progress_ui.live_figures(
            run, live, "stop", "Finish this batch, save and stop.", "Stopping: the run saves after the current batch."
        )
    else:
        if live.status == "failed":
            messages.error(live.error or "The run failed without a message; see its train.log.")
        elif live.status == "stopped":
            st.warning(
                f"Stopped after {len(rows)} complete epoch(s) of {live.epochs}, in {summary.format_duration(live.elapsed_s)}."
            )
        else:
            st.success(
                f"Finished {live.epochs} epochs in {summary.format_duration(live.elapsed_s)}.", icon=":material/check_circle:"
            )
        if outcome := summary.outcome_figures(rows):
            for column, (label, value) in zip(st.columns(len(outcome)), outcome):
                column.metric(label, value)
        if run.has_checkpoint() and live.status in ("finished", "stopped"):
            links = st.columns([1, 1, 2])
            links[0].page_link("pages/explore.py", label="Explore its errors", icon=":material/troubleshoot:")
            links[1].button(
                "Use this model", icon=":material/check:", on_click=_use_model, args=(run.id,), key=f"use_{run.id}",
                help="Select it in the sidebar's model picker for the other pages.",
            )  # fmt: skip
    # The planned epochs fix the x axis only while the run trains; a stopped run's curves fit the epochs it did.
    planned = live.epochs if live.active else None
    charts_of(run, rows, planned)
    steps_ui.live_curves(run, rows, planned)


@st.fragment(run_every=1.0)
def live_panel(run_id: str) -> None:
    """Redrawn every second while the run trains; once it ends, the whole page reruns to show the outcome."""
    try:
        run = RunStore().get(run_id)
    except RunError:
        st.rerun()
    if not run.is_active():
        st.rerun()  # a full rerun also refreshes the sidebar's model picker with the new model
    run_panel(run)


st.title("Train")
store = RunStore()
run, why = store.focus(st.session_state.get(STARTED))
if why != "training" and (st.session_state.get(PROBLEM) or ("",))[0] == "start":
    st.session_state[PROBLEM] = None  # "wait for the other run" is stale once nothing trains
if not dataset_present(resolve_data_dir()):
    messages.warning(
        f"MNIST is not in `{resolve_data_dir().resolve()}`: a run will try to download it and fail when offline (see Home)."
    )
if why == "training":
    live_panel(run.id)
elif why == "mine":
    run_panel(run)  # the outcome of the run this session just watched stays where it was
if run is not None and why != "latest":
    limit = max_concurrent_runs()
    with st.expander(f"New run (this server trains {limit} run{'s' if limit > 1 else ''} at a time)", expanded=why == "mine"):
        new_run_form()
else:
    st.subheader("New run")
    new_run_form()
    if run is not None:
        st.divider()
        st.caption("Latest run")
        run_panel(run)
audit_ui.audit_form()
