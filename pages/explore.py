"""Explore page: where the model is wrong, and why."""

import streamlit as st

from ui.entry import run_inside_entry_script

run_inside_entry_script()  # first: see ui/entry.py

from mnist_core import gallery  # noqa: E402
from mnist_core.analysis import analyze, is_cached  # noqa: E402
from mnist_core.data import load_split  # noqa: E402
from mnist_core.label_issues import confident_mask, find_label_issues  # noqa: E402
from ui import audit as audit_ui  # noqa: E402
from ui import charts, links  # noqa: E402
from ui import compare as compare_ui  # noqa: E402
from ui import dynamics as story_ui  # noqa: E402
from ui import explorer as ui  # noqa: E402
from ui import maps as maps_ui  # noqa: E402
from ui.messages import show_error  # noqa: E402
from ui.model_picker import current_model  # noqa: E402

ISSUES_SHOWN = 24
MAP_WIDTH = 395  # CSS pixels: the map's column in a 1400-pixel window (the still then has the chart's height)

st.title("Explore errors")
links.adopt_view()  # a shared link's split, comparison and filters, before their widgets

with show_error(stop=True):
    checkpoint = current_model()
if checkpoint is None:
    st.info("There is no model to explore yet: train one on the Train page.", icon=":material/info:")
    st.stop()

split_name = st.segmented_control("Split", ("test", "train"), default=links.split_default(), key=links.SPLIT_KEY) or "test"
with show_error(stop=True):
    split = load_split(split_name)
ui.start((checkpoint.digest, split_name))
links.adopt_sample(len(split))

first_time = st.empty()  # said only while it is true: the caption goes once the analysis is there
if not is_cached(checkpoint, split):
    first_time.caption(f"Running the model over the {len(split):,} {split_name} images; this happens once per model.")
with st.spinner(f"Analysing {len(split):,} {split_name} images…"):
    result = analyze(checkpoint, split)
first_time.empty()
evaluation = result.evaluation
summary = evaluation.summary()
issues = find_label_issues(result.probabilities, result.labels, top=ISSUES_SHOWN)
flagged = int(confident_mask(result.probabilities, result.labels).sum())
story = story_ui.current(split_name, result)

a, b, c, d = st.columns(4)
a.metric("Accuracy", f"{summary['accuracy']:.2%}")
b.metric("Mean loss", f"{summary['loss']:.4f}")
c.metric(f"Errors of {summary['n']:,}", f"{summary['errors']:,}")  # the count alone fits a quarter of the page
d.metric("Suspected label errors", f"{flagged:,}")
with st.expander("Precision, recall and F1 per digit"):
    st.dataframe(
        gallery.per_class_table(result),
        column_config={name: st.column_config.NumberColumn(format="percent") for name in ("precision", "recall", "f1")},
    )
st.download_button(
    "Download predictions (CSV)", evaluation.predictions_csv, file_name=f"predictions-{split_name}.csv", mime="text/csv",
    icon=":material/download:", on_click="ignore", help="One row per image: index, label, prediction, confidence, p0..p9.",
)  # fmt: skip

matrix_column, map_column = st.columns([4, 3])
with matrix_column:
    st.subheader("Confusion matrix")
    normalized = st.toggle("Row-normalized (% of each true digit)", key="explore_normalized")
    event = st.dataframe(
        gallery.styled_confusion(evaluation.confusion, normalized),
        column_config=ui.CONFUSION_COLUMNS,
        row_height=ui.CONFUSION_ROW_HEIGHT,
        key="explore_cm",
        on_select="rerun",
        selection_mode="single-cell",
    )
    st.caption("Rows: true digit; columns: predicted digit. Select a cell to show exactly its samples below.")
    ui.apply_cell(event["selection"]["cells"])
with map_column:
    st.subheader("Feature map")
    best = maps_ui.best_map(result)
    chosen = charts.chart(
        ui.map_figure(result, best.points, best.version),
        "explore_map",
        width=MAP_WIDTH,
        still_name=(result.digest, split_name, result.data_checksum, best.version),
        on_select="rerun",
        selection_mode=("box", "lasso"),
    )
    st.caption(maps_ui.caption(best.method, best.state))
    maps_ui.follow(result, best.state)
    ui.apply_map(chosen["selection"]["points"])
story_ui.cartography(story)
comparison = compare_ui.section(split, result)

gallery_column, detail_column = st.columns([7, 4], gap="medium")
with gallery_column:
    # One view at a time (not tabs): tabs would build both galleries on every rerun.
    view = st.segmented_control("View", ("Gallery", "Suspected label errors"), default="Gallery", key="explore_view")
    if view != "Suspected label errors":
        ui.filters()
        story_ui.filters(story)
        query = ui.current_query()
        indices = compare_ui.restrict(comparison, story_ui.restrict(story, gallery.select(result, query)))
        compare_ui.note(comparison)
        if query.subset:
            note, clear = st.columns([4, 1])
            note.info(f"Limited to the {len(query.subset):,} points selected on the map.", icon=":material/filter_alt:")
            if clear.button("Clear map selection"):
                st.session_state[ui.SUBSET] = None
                st.rerun()
        st.markdown(f"**{len(indices):,} {'sample matches' if len(indices) == 1 else 'samples match'}.**")
        page = ui.pager(len(indices))
        on_page = ui.as_list(gallery.page_slice(indices, page))
        if links.drawing_sample_first():
            st.caption("The digits follow in a moment: the linked sample comes first.")
        else:
            ui.open_sample(ui.tiles(split, on_page, [gallery.caption(result, i) for i in on_page], key="gallery"))
    else:
        st.markdown(
            f"The {len(issues):,} samples whose given label the model most contradicts, most suspect first; "
            f"**{flagged:,}** of all {len(result):,} pass confident learning's per-class thresholds (marked ✓). "
            "Captions read given → suggested (score = p(suggested) − p(given))."
        )
        top = issues
        captions = [f"{i.given} → {i.suggested} ({i.score:.2f})" + (" ✓" if i.confident else "") for i in top]
        ui.open_sample(ui.tiles(split, [i.index for i in top], captions, key="issue"))

links.remember()  # the address bar now links to this view
with detail_column:
    index = ui.selected_sample(len(result))
    if index is None:
        st.info("Open a sample (the # button under a digit) to see why the model said what it said.", icon=":material/touch_app:")
    else:
        with show_error(stop=True):
            bank_split = load_split(ui.BANK_SPLIT)
        # The neighbour bank (60,000 training images through the model) is a run folder's own, or else computed in
        # the background: the detail does not wait for it (a shared link opens in seconds, not half a minute).
        bank = analyze(checkpoint, bank_split) if is_cached(checkpoint, bank_split) else None
        ui.heading(split, result, index)
        story_ui.curve(story, index)
        ui.detail(checkpoint, split, result, bank_split, bank, index)
        links.scroll_to_linked_sample()

audit_ui.review(split_name)
if split_name != ui.BANK_SPLIT:
    ui.prefetch_bank(checkpoint)  # ready by the time a sample is opened, but not drawn beside the page
charts.upgrade_when_idle()  # last: the interactive charts replace this first drawing's stills
