"""Draw page: draw or upload a digit and see what the model thinks, and why.

The canvas and everything that answers it live in one fragment: a stroke reruns only that part
of the page, not the sidebar and the rest of the app, so the answer comes back sooner.
"""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from ui.entry import run_inside_entry_script

run_inside_entry_script()  # first: see ui/entry.py

from mnist_core.charts import class_probability_figure  # noqa: E402
from mnist_core.checkpoint import Checkpoint  # noqa: E402
from mnist_core.errors import BlankImageError, ImageError  # noqa: E402
from mnist_core.preprocess import CONFIDENCE_THRESHOLD, UPLOAD_TYPES, Preprocessed, predict, preprocess  # noqa: E402
from mnist_core.saliency import SALIENCY_METHOD, saliency, saliency_overlay  # noqa: E402
from ui import inside, messages  # noqa: E402
from ui.model_picker import require_model  # noqa: E402

CANVAS_SIDE = 280  # ten canvas pixels per MNIST pixel
VERSION = "draw_canvas_version"  # bumping it gives the canvas a new key: an empty canvas


@st.cache_data(max_entries=256, show_spinner=False)
def explain(_model, _image, digest: str, pixels: bytes, target: int):
    """Saliency once per (model digest, 28x28 pixels, class): a rerun from another widget does not redo it."""
    return saliency(_model, _image, target)


def digit_input():
    """The canvas or the uploader, as the user chose: the raw picture, or None while there is none."""
    source = st.segmented_control("Input", ("Draw", "Upload"), default="Draw", key="draw_source") or "Draw"
    if source == "Upload":
        return st.file_uploader(
            "A picture of one digit, dark on light or light on dark, any size",
            help=f"PNG or JPEG, up to {st.get_option('server.maxUploadSize')} MB (this server's upload limit).",
            type=list(UPLOAD_TYPES),
            key="draw_upload",
        )
    brush, clear = st.columns([2, 1], vertical_alignment="bottom")
    width = brush.slider("Brush width", min_value=6, max_value=40, value=20, key="draw_brush")
    if clear.button("Clear", icon=":material/delete:", width="stretch", key="draw_clear"):
        st.session_state[VERSION] += 1
    # The canvas's own toolbar (undo, redo, reset) floats over the line above it: keep that line short.
    st.caption("Draw one digit:")
    canvas = st_canvas(
        stroke_width=width,
        stroke_color="#FFFFFF",
        background_color="#000000",
        width=CANVAS_SIDE,
        height=CANVAS_SIDE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"draw_canvas_{st.session_state[VERSION]}",
    )
    return canvas.image_data


def prepared(image) -> Preprocessed | None:
    """The picture as the model's 28x28 input, or None with a message saying why there is none."""
    if image is None:
        st.info("Draw a digit on the canvas (or upload a picture) to see what the model thinks.", icon=":material/draw:")
        return None
    try:
        return preprocess(image)
    except BlankImageError as exc:
        messages.info(exc, icon=":material/draw:")
    except ImageError as exc:
        messages.error(exc)
    return None


def show_answer(checkpoint: Checkpoint, digit: Preprocessed) -> None:
    """The verdict first (it is what the user waits for), then the probabilities and the saliency map."""
    answer = predict(checkpoint.model, digit)
    top = answer.top(3)
    runners_up = ", ".join(f"**{d}** {p:.1%}" if p >= 0.001 else f"**{d}** <0.1%" for d, p in top[1:])
    if answer.is_confident():
        st.success(
            f"### It's a {answer.prediction}\n{answer.confidence:.1%} sure · then {runners_up}", icon=":material/check_circle:"
        )
    else:
        guesses = " or ".join(f"**{d}** ({p:.0%})" for d, p in top)
        st.warning(
            f"### Not sure\nThe model is less than {CONFIDENCE_THRESHOLD:.0%} sure: maybe {guesses}. "
            "Try drawing it larger, clearer or in one piece.",
            icon=":material/help:",
        )
    chart, explanation = st.columns([3, 2])
    chart.plotly_chart(class_probability_figure(answer.probabilities), key="draw_probabilities")
    with explanation:
        attribution = explain(checkpoint.model, digit.tensor, checkpoint.digest, digit.pixels.tobytes(), answer.prediction)
        st.image(saliency_overlay(digit.centred, attribution, scale=7), caption=f"Why {answer.prediction}")
        st.caption(f"Saliency ({SALIENCY_METHOD}): red ink pushes towards {answer.prediction}, blue ink away from it.")


@st.fragment
def workbench(checkpoint: Checkpoint) -> None:
    """Input on the left, the answer on the right, the preprocessing stages below."""
    left, right = st.columns([2, 3], gap="large")
    with left:
        image = digit_input()
    with right:
        digit = prepared(image)
        if digit is not None:
            show_answer(checkpoint, digit)
    if digit is not None:
        st.subheader("What the model sees", divider="gray")
        stages = digit.stages()
        for column, (caption, picture) in zip(st.columns(len(stages)), stages.items()):
            column.image(picture, caption=caption)
        # Behind a toggle, as on Explore: most drawings only want the answer, and the panel's model passes would
        # double the server's work per stroke for every visitor (bench/load_test.py, docs/performance.md).
        inside.panel(checkpoint, digit.pixels, key="draw_inside", on_request=True)


st.title("Draw a digit")
st.caption(
    "Draw with the mouse or a finger, or upload a picture. The digit is prepared the way MNIST's were "
    "(cropped, scaled to fit 20x20, centred by its centre of mass in 28x28) before the model sees it."
)

checkpoint = require_model()

st.session_state.setdefault(VERSION, 0)
workbench(checkpoint)
