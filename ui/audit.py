"""Streamlit pieces of the label audit: starting one and watching it (Train), reviewing its suspects (Explore)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mnist_core import gallery, summary
from mnist_core.audit import DEFAULT_FOLDS, DEFAULT_PRESET, MAX_FOLDS, AuditConfig
from mnist_core.audit_run import (
    FOLDS_NAME,
    AuditData,
    audit_bars,
    finished_audits,
    fold_probabilities,
    load_audit,
)
from mnist_core.cleaning import cleaning_from_verdicts
from mnist_core.config import PRESETS, TrainConfig
from mnist_core.data import load_split, resolve_data_dir
from mnist_core.errors import ConfigError, MnistLabError, RunError
from mnist_core.launch import start_audit, start_run
from mnist_core.limits import fit_config, public_message
from mnist_core.runs import Run, RunStore
from mnist_core.verdicts import VERDICTS, load_verdicts, set_verdict, verdicts_csv
from ui import explorer
from ui import progress as progress_ui
from ui.messages import show_error

PROBLEM = "audit_problem"  # message of the last refused start
RETRAIN_PROBLEM = "audit_retrain_problem"
TRAIN_STARTED = "train_run_id"  # the Train page's own key for the run this session started last
STARTED = "audit_started"  # the audit this session started last
CHOSEN, SPLIT, SAMPLE = "audit_run", "audit_split", "audit_sample"
SHOWN = 24  # suspects shown per split, as Explore's own list
FIELDS = ("folds", "preset", "epochs", "seed", "train_subset")


def _field(name: str) -> str:
    return f"audit_form_{name}"


def _start() -> None:
    """Form callback: build the AuditConfig (validated there) and start it; a refusal is kept to show."""
    st.session_state[PROBLEM] = None
    values = {name: st.session_state.get(_field(name)) for name in FIELDS}
    try:
        overrides = {key: values[key] for key in ("epochs", "seed", "train_subset") if values[key] is not None}
        config = AuditConfig(TrainConfig.from_preset(values["preset"], **overrides), int(values["folds"]))
        run = start_audit(config, data_dir=resolve_data_dir())
    except (ConfigError, RunError) as exc:
        st.session_state[PROBLEM] = public_message(exc)
        return
    st.session_state[STARTED] = run.id


def audit_form() -> None:
    """The "Audit the labels" form: cross-validate the training set to find its label errors (a background run)."""
    defaults = fit_config(TrainConfig.from_preset(DEFAULT_PRESET))  # a hosted server's caps lower the defaults
    with st.expander("Audit the labels", icon=":material/fact_check:"):
        st.caption(
            f"Trains {DEFAULT_FOLDS} models, each on all training images but one fold, so every image is judged by a model "
            "that never saw it; Explore then ranks the images whose label those models contradict. "
            "The default (one `fast` epoch per fold) takes a few minutes on a laptop CPU."
        )
        with st.form("audit_form", border=False):
            a, b, c, d, e = st.columns(5)
            a.number_input("Folds", min_value=2, max_value=MAX_FOLDS, value=DEFAULT_FOLDS, step=1, key=_field("folds"))
            b.selectbox("Recipe per fold", tuple(PRESETS), index=tuple(PRESETS).index(DEFAULT_PRESET), key=_field("preset"))
            c.number_input("Epochs per fold", value=None, step=1, placeholder="the recipe's", key=_field("epochs"))
            d.number_input("Seed", value=0, step=1, key=_field("seed"))
            e.number_input(
                "Training images", value=defaults.train_subset, step=1000, placeholder="all 60,000", key=_field("train_subset")
            )
            st.form_submit_button("Audit the labels", icon=":material/fact_check:", on_click=_start)
        if problem := st.session_state.get(PROBLEM):
            st.error(problem, icon=":material/error:")
    retrain_form()


def _retrain() -> None:
    """Retrain callback: the chosen audit's "label wrong" verdicts become a cleaned TrainConfig, started as a new run."""
    st.session_state[RETRAIN_PROBLEM] = None
    try:
        audit = RunStore().get(st.session_state[_field("retrain_audit")])
        cleaning = cleaning_from_verdicts(audit, st.session_state[_field("retrain_mode")])
        config = TrainConfig.from_preset(st.session_state[_field("retrain_preset")], **cleaning)
        run = start_run(config, data_dir=resolve_data_dir(), name=f"cleaned-{cleaning['clean']}")
    except (ConfigError, RunError) as exc:
        st.session_state[RETRAIN_PROBLEM] = public_message(exc)
        return
    st.session_state[TRAIN_STARTED] = run.id


def retrain_form() -> None:
    """Retrain on cleaned labels: a new training run without (or relabelling) the samples an audit's reviewers marked wrong."""
    audits = finished_audits(RunStore())
    if not audits:
        return
    with st.expander("Retrain on cleaned labels", icon=":material/cleaning_services:"):
        st.caption(
            "Trains a new run on the training set minus the samples reviewers marked 'label wrong' in an audit, "
            "or with those samples relabelled to the audit's suggestion. Its config records the audit and the indices."
        )
        with st.form("retrain_form", border=False):
            a, b, c = st.columns(3)
            a.selectbox("Audit", [run.id for run in audits], key=_field("retrain_audit"))
            b.segmented_control(
                "Marked wrong", ("drop", "relabel"), default="drop", required=True, key=_field("retrain_mode"),
                format_func={"drop": "leave out", "relabel": "relabel to the suggestion"}.get,
            )  # fmt: skip
            c.selectbox("Recipe", tuple(PRESETS), key=_field("retrain_preset"))
            st.form_submit_button("Train on cleaned labels", icon=":material/play_arrow:", on_click=_retrain)
        if problem := st.session_state.get(RETRAIN_PROBLEM):
            st.error(problem, icon=":material/error:")


def audit_panel(run: Run) -> None:
    """An audit on the Train page: fold, epoch and batch bars, ETA and Stop while it runs; its outcome after."""
    progress = run.progress()
    live = summary.live_progress(progress)
    st.subheader(f"Label audit `{run.id}`: {live.status}")
    if live.active:
        bars = audit_bars(progress)
        for fraction, text in (bars.fold, bars.epoch, bars.batch):
            st.progress(fraction, text=text)
        progress_ui.live_figures(run, live, "audit_stop", "Finish this batch and stop.", "Stopping after the current batch.")
        return
    if live.status == "failed":
        st.error(public_message(live.error or "The audit failed without a message; see its train.log."), icon=":material/error:")
    elif live.status == "stopped":
        st.warning(f"Stopped after {progress.get('folds_done', 0)} of {progress.get('folds')} folds: nothing to review.")
    else:
        st.success(
            f"Audited {progress.get('train_size', 0):,} training images in {summary.format_duration(live.elapsed_s)}.",
            icon=":material/check_circle:",
        )
        st.page_link("pages/explore.py", label="Review its suspects on Explore", icon=":material/troubleshoot:")
    folds_csv = run.path / FOLDS_NAME
    if folds_csv.is_file():
        st.caption("Each fold model, measured on the fold it did not train on")
        table = pd.read_csv(folds_csv)[["fold", "test_acc", "test_loss", "epoch_s"]]
        st.dataframe(table, hide_index=True, column_config={"test_acc": st.column_config.NumberColumn(format="percent")})


@st.cache_resource(max_entries=2, show_spinner=False)
def _audit(path: str, stamp: float) -> AuditData:
    return load_audit(Run(path))


@st.cache_resource(max_entries=2, show_spinner=False)
def _fold_models(path: str, stamp: float):
    return _audit(path, stamp).fold_models()


def _record(run: Run, split: str, index: int, given: int, suggested: int) -> None:
    verdict = st.session_state.get(f"audit_verdict_{split}_{index}")
    if verdict is None:
        return
    try:
        set_verdict(run, split, index, given, suggested, verdict)
    except RunError as exc:
        st.session_state["audit_verdict_error"] = str(exc)


def review(default_split: str) -> None:
    """Explore's label-audit section: an audit's ranked suspects per split, a sample's fold models, verdicts."""
    st.header("Label audit", divider="gray")
    audits = finished_audits(RunStore())
    if not audits:
        st.info("No finished label audit yet: start one on the Train page (Audit the labels).", icon=":material/info:")
        return
    ids = [run.id for run in audits]
    if st.session_state.get(CHOSEN) not in ids:
        st.session_state[CHOSEN] = ids[0]
    left, right = st.columns([3, 1])
    run_id = left.selectbox("Audit", ids, key=CHOSEN)
    st.session_state.setdefault(SPLIT, default_split)
    split_name = right.segmented_control("Audited split", ("train", "test"), key=SPLIT) or default_split
    run = RunStore().get(run_id)
    with show_error(stop=False):
        audit = _audit(str(run.path), (run.path / "audit.npz").stat().st_mtime)
        split = load_split(split_name)
        verdicts = load_verdicts(run)
        _suspects(run, audit, split, verdicts)
        st.download_button(
            "Download verdicts (CSV)", verdicts_csv(run), file_name=f"{run.id}-verdicts.csv", mime="text/csv",
            icon=":material/download:", on_click="ignore", key="audit_csv",
        )  # fmt: skip


def _suspects(run: Run, audit: AuditData, split, verdicts: dict) -> None:
    issues = audit.issues(split.name)
    flagged = sum(issue.confident for issue in issues)
    top = issues[:SHOWN]
    judged = sum(1 for key in verdicts if key[0] == split.name)
    st.markdown(
        f"The {len(top)} most suspect of {len(issues):,} audited {split.name} images, ranked by out-of-sample "
        f"probabilities; **{flagged:,}** pass confident learning's thresholds (✓). {judged:,} judged so far. "
        "Captions read given → suggested (score = p(suggested) − p(given))."
    )
    captions = []
    for issue in top:
        verdict = verdicts.get((split.name, issue.index), {}).get("verdict")
        mark = (" ✓" if issue.confident else "") + (f" · {VERDICTS[verdict]}" if verdict else "")
        captions.append(f"{issue.given} → {issue.suggested} ({issue.score:.2f}){mark}")
    opened = explorer.tiles(split, [issue.index for issue in top], captions, key=f"audit_{split.name}")
    if opened is not None:
        st.session_state[SAMPLE] = (split.name, opened)
    chosen = st.session_state.get(SAMPLE)
    by_index = {issue.index: issue for issue in issues}
    if isinstance(chosen, tuple) and chosen[0] == split.name and chosen[1] in by_index:
        _sample(run, audit, split, by_index[chosen[1]], verdicts)


def _sample(run: Run, audit: AuditData, split, issue, verdicts: dict) -> None:
    st.subheader(f"Audit sample #{issue.index} of the {split.name} split")
    st.caption(f"Given label {issue.given}, suggested {issue.suggested}, score {issue.score:.2f}.")
    left, right = st.columns([1, 3])
    left.image(gallery.enlarge(gallery.pixels(split, [issue.index])[0], 6), caption=f"#{issue.index}")
    try:
        models = _fold_models(str(run.path), (run.path / "audit.npz").stat().st_mtime)
    except MnistLabError as exc:
        right.error(str(exc), icon=":material/error:")
        return
    probabilities = fold_probabilities(models, split.images[issue.index : issue.index + 1])
    held_out = audit.fold_of(issue.index) if split.name == "train" else None
    roles = [
        "never saw it (test set)" if split.name == "test" else ("held it out" if k == held_out else "trained on it")
        for k in range(1, len(models) + 1)
    ]
    table = pd.DataFrame(probabilities, columns=[str(d) for d in range(10)])
    table.insert(0, "model", [f"fold {k}" for k in range(1, len(models) + 1)])
    table.insert(1, "this sample", roles)
    right.markdown("**Each fold model's probabilities**")
    right.dataframe(
        table, hide_index=True, key=f"audit_probs_{split.name}_{issue.index}",
        column_config={str(d): st.column_config.NumberColumn(format="percent") for d in range(10)},
    )  # fmt: skip
    current = verdicts.get((split.name, issue.index))
    key = f"audit_verdict_{split.name}_{issue.index}"
    if current is not None and key not in st.session_state:
        st.session_state[key] = current["verdict"]
    st.segmented_control(
        "Verdict", tuple(VERDICTS), format_func=VERDICTS.get, key=key,
        on_change=_record, args=(run, split.name, issue.index, issue.given, issue.suggested),
    )  # fmt: skip
    if current is not None:
        st.caption(f"Saved: {VERDICTS[current['verdict']]} ({current['at']} UTC), shared with everyone on this server.")
    if error := st.session_state.pop("audit_verdict_error", None):
        st.error(error, icon=":material/error:")
