"""Home: what MNIST Lab is, whether MNIST is here, sample digits, and the selected model's card."""

import streamlit as st

from ui.entry import run_inside_entry_script

run_inside_entry_script()  # first: see ui/entry.py

from mnist_core import charts, summary  # noqa: E402
from mnist_core.catalog import BUNDLED_KEY  # noqa: E402
from mnist_core.data import DATA_DIR_ENV, RAW_FILES, dataset_present, load_split, raw_folder, resolve_data_dir  # noqa: E402
from mnist_core.pretrained import MODEL_CARD_PATH  # noqa: E402
from mnist_core.pretrained import model_card as bundled_card  # noqa: E402
from ui import messages  # noqa: E402
from ui.messages import show_error  # noqa: E402
from ui.model_picker import current_model, current_source  # noqa: E402

st.title("MNIST Lab")
st.markdown("Train the classic MNIST CNN, watch it learn, hunt through its mistakes and try it on digits you draw.")
steps = st.columns(4)
steps[0].page_link("pages/train.py", label="**Train** and watch it learn", icon=":material/model_training:")
steps[1].page_link("pages/runs.py", label="**Compare** runs and their curves", icon=":material/table_chart:")
steps[2].page_link("pages/explore.py", label="**Explore** the model's errors", icon=":material/troubleshoot:")
steps[3].page_link("pages/draw.py", label="**Draw** a digit for it", icon=":material/draw:")

dataset_column, model_column = st.columns([5, 6], gap="large")
with dataset_column:
    st.header("Dataset", divider="gray")
    data_dir = resolve_data_dir().resolve()
    if dataset_present(data_dir):
        with show_error():
            test = load_split("test", data_dir, download=False)
            messages.success(f"MNIST found in `{data_dir}` ({len(test):,} test images).")
            st.image(
                summary.sample_grid(test, per_class=12),
                caption="The first twelve test images of each digit, 0 (top) to 9, as the model sees them.",
            )
    else:
        files = ", ".join(f"`{name}`" for pair in RAW_FILES.values() for name in pair)
        messages.warning(f"MNIST is not in `{data_dir}` yet.")
        messages.markdown(
            f"- **With internet:** download it now (about 11 MB), or just start a run: training downloads it too.\n"
            f"- **Offline:** copy the four files ({files}) into `{raw_folder(data_dir)}`, "
            f"or start the app with `{DATA_DIR_ENV}` pointing at a folder that has `MNIST/raw/`."
        )
        if st.button("Download MNIST", icon=":material/download:"):
            with show_error(), st.spinner("Downloading MNIST…"):
                load_split("test", data_dir)
                st.rerun()


with model_column:
    st.header("Selected model", divider="gray")
    source = current_source()
    if source is None:
        st.info(
            "No model yet: train one on the Train page (the fast preset takes under a minute on 2 CPU cores).",
            icon=":material/info:",
        )
        st.stop()
    with show_error(stop=True):
        checkpoint = current_model()
    card = summary.model_card(checkpoint.meta)
    trained = f", trained {card.trained_at:%Y-%m-%d %H:%M} UTC" if card.trained_at else ""
    st.markdown(f"**{source.label}**{trained}  \n{card.recipe}")
    figures = st.columns(3)
    figures[0].metric("Test accuracy", f"{card.test_acc:.2%}" if card.test_acc is not None else "–")
    figures[1].metric("Epochs", f"{card.epoch}{' (stopped mid-epoch)' if card.partial_epoch else ''}" if card.epoch else "–")
    figures[2].metric("Training images", f"{card.train_images:,}" if card.train_images else "–")
    if card.per_class_acc:
        st.plotly_chart(charts.per_class_figure(card.per_class_acc, "Test accuracy per digit (at the end of training)"))
    if source.key == BUNDLED_KEY and MODEL_CARD_PATH.is_file():
        with st.expander("Model card: how the bundled model was made"):
            st.json(bundled_card())
