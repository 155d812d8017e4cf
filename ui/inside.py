"""The "Inside the model" panel shared by Draw and Explore: what-if sliders, layer activations, sweep, attributions, nudge.

Everything is computed by mnist_core (activations, probes, adversarial, saliency) and shown as a
few images built there; the panel is one fragment, so moving a slider reruns only the panel.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from mnist_core import activations as layers
from mnist_core import probes
from mnist_core.adversarial import MAX_EPSILON, nudge, perturbation_image
from mnist_core.charts import class_probability_figure, sweep_figure
from mnist_core.saliency import SALIENCY_METHOD, saliency, saliency_overlay

# name: (label, low, high, default, step, display format)
SLIDERS = {
    "rotation": ("Rotate (degrees)", *probes.ROTATION_RANGE, 0.0, 1.0, "%.0f°"),
    "scale": ("Scale", *probes.SCALE_RANGE, 1.0, 0.05, "%.2fx"),
    "shift_x": ("Shift right (px)", *probes.SHIFT_RANGE, 0.0, 0.5, "%.1f"),
    "shift_y": ("Shift down (px)", *probes.SHIFT_RANGE, 0.0, 0.5, "%.1f"),
    "stroke": ("Stroke: thinner / thicker", *probes.STROKE_RANGE, 0.0, 0.25, "%.2f"),
    "noise": ("Noise", *probes.NOISE_RANGE, 0.0, 0.05, "%.2f"),
}
ERASE_DEFAULT = (10, 18)
VIEWS = ("Layers", "Sweep", "Occlusion vs gradients", "Make it a …")
DIGIT_SCALE = 6  # a 28x28 digit shown at 168 px


def _digest(pixels: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(pixels, dtype=np.float32).tobytes()).hexdigest()


@st.cache_data(max_entries=128, show_spinner=False)
def _saliency(digest: str, pixels_digest: str, target: int, _model, _pixels: np.ndarray) -> np.ndarray:
    return saliency(_model, layers.model_input(layers.as_pixels(_pixels)), target)


@st.cache_data(max_entries=64, show_spinner=False)
def _occlusion(digest: str, pixels_digest: str, target: int, _model, _pixels: np.ndarray) -> np.ndarray:
    return probes.occlusion(_model, _pixels, target=target).map


def _ink_uint8(pixels: np.ndarray) -> np.ndarray:
    return (np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)


def _reset(key: str) -> None:
    for name, (_, _, _, default, _, _) in SLIDERS.items():
        st.session_state[f"{key}_{name}"] = default
    st.session_state[f"{key}_erase"] = False
    st.session_state[f"{key}_erase_rows"] = ERASE_DEFAULT
    st.session_state[f"{key}_erase_cols"] = ERASE_DEFAULT


def sliders(key: str, compact: bool = False) -> probes.Transform:
    """The what-if sliders and the reset button; returns the transformation they describe."""
    for name, (_, _, _, default, _, _) in SLIDERS.items():
        st.session_state.setdefault(f"{key}_{name}", default)
    per_row = 2 if compact else len(SLIDERS)
    columns = [column for _ in range(0, len(SLIDERS), per_row) for column in st.columns(per_row)]
    values = {}
    for column, (name, (label, low, high, _, step, shown)) in zip(columns, SLIDERS.items()):
        values[name] = column.slider(label, min_value=low, max_value=high, step=step, format=shown, key=f"{key}_{name}")
    erase_on, rows, cols, reset = st.columns([1, 2, 2, 1] if not compact else [2, 2, 2, 2], vertical_alignment="bottom")
    erase = erase_on.toggle("Erase a box", key=f"{key}_erase")
    row_range = rows.slider("Box rows", 0, 28, ERASE_DEFAULT, key=f"{key}_erase_rows", disabled=not erase)
    col_range = cols.slider("Box columns", 0, 28, ERASE_DEFAULT, key=f"{key}_erase_cols", disabled=not erase)
    reset.button("Reset", icon=":material/restart_alt:", on_click=_reset, args=(key,), key=f"{key}_reset", width="stretch")
    box = (row_range[0], col_range[0], row_range[1] - row_range[0], col_range[1] - col_range[0]) if erase else None
    return probes.Transform(erase=box, **values)


def panel(checkpoint, image, key: str, compact: bool = False, on_request: bool = False) -> None:
    """The whole panel for one digit (uint8 pixels or ink in [0, 1], 28x28) and one model.

    `compact` lays it out for a narrow column; `on_request` puts it behind a toggle, for pages where
    most visits do not need it (its model passes then run only when asked for).
    """
    if on_request:
        # The choice outlives runs that draw no panel (a cleared canvas): Streamlit forgets a widget it did not draw.
        wanted = f"_{key}_wanted"
        opened = st.toggle(
            "Inside the model: layers, what-if, nudge", value=st.session_state.get(wanted, False), key=f"{key}_open"
        )
        st.session_state[wanted] = opened
        if not opened:
            return
    _panel(checkpoint, layers.as_pixels(image)[0, 0].numpy(), key, compact)


@st.fragment
def _panel(checkpoint, original: np.ndarray, key: str, compact: bool) -> None:
    st.subheader("Inside the model", divider="gray")
    st.caption("Change the digit and watch the answer move; look at what each layer makes of it.")
    transform = sliders(key, compact)
    digit = original if transform.is_identity() else probes.transformed(original, transform)
    model, digest, pixels_digest = checkpoint.model, checkpoint.digest, _digest(digit)
    acts = layers.activations(model, digit)
    probabilities = acts.probabilities
    predicted = int(probabilities.argmax())

    if compact:
        picture, why = st.columns(2)
        chart = st.container()
    else:
        picture, chart, why = st.columns([2, 3, 2])
    before = int(layers.activations(model, original).probabilities.argmax()) if digit is not original else predicted
    change = "" if before == predicted else f" · the original is read as {before}"
    picture.markdown(f"**Prediction: {predicted}** ({probabilities[predicted]:.1%}){change}")
    picture.image(
        [layers.enlarged(original, 28 * 4), layers.enlarged(digit, 28 * 4)],
        caption=["original", "changed" if digit is not original else "unchanged"],
        width=28 * 4,
    )
    chart.plotly_chart(class_probability_figure(probabilities), key=f"{key}_probabilities")
    attribution = _saliency(digest, pixels_digest, predicted, model, digit)
    why.image(saliency_overlay(_ink_uint8(digit), attribution, scale=DIGIT_SCALE), caption=f"Why {predicted}")
    why.caption(f"Saliency ({SALIENCY_METHOD}): red ink pushes towards {predicted}, blue away.")

    view = st.segmented_control("Look at", VIEWS, default=VIEWS[0], key=f"{key}_view") or VIEWS[0]
    if view == "Layers":
        _layers(model, digit, acts, key, compact)
    elif view == "Sweep":
        _sweep(model, original, transform, key)
    elif view == "Occlusion vs gradients":
        _attributions(model, digest, pixels_digest, digit, predicted, attribution)
    else:
        _nudge(model, digest, pixels_digest, digit, predicted, key)


def _layers(model, digit: np.ndarray, acts: layers.Activations, key: str, compact: bool) -> None:
    """Feature-map grids, fc1 and logits strips, one map enlarged beside the input and its filter, conv1's filters."""
    conv1, conv2 = (st.container(), st.container()) if compact else st.columns([1, 1], gap="medium")
    conv1.image(layers.grid_image(acts.conv1, columns=8, scale=2), caption="conv1: 32 feature maps, 28x28, after ReLU")
    conv2.image(layers.grid_image(acts.conv2, columns=8, scale=2), caption="conv2: 64 feature maps, 14x14, after ReLU")
    st.caption("Maps are numbered from 0, left to right, top to bottom; white is the layer's strongest response.")
    fc1, logits = st.columns([3, 1], gap="medium")
    fc1.image(layers.strip_image(acts.fc1, columns=32, scale=14), caption="fc1: 128 units after ReLU")
    logits.image(layers.strip_image(acts.logits, columns=10, scale=28, signed=True), caption="logits 0-9: red > 0 > blue")
    top = np.argsort(-acts.logits)[:3]
    logits.caption("highest: " + ", ".join(f"{d} ({acts.logits[d]:.1f})" for d in top))

    which, index = st.columns([1, 3])
    layer = which.segmented_control("Enlarge a map of", ("conv1", "conv2"), default="conv1", key=f"{key}_layer") or "conv1"
    maps = acts.conv1 if layer == "conv1" else acts.conv2
    strongest = int(maps.reshape(len(maps), -1).mean(axis=1).argmax())
    st.session_state.setdefault(f"{key}_{layer}_map", strongest)
    chosen = index.slider(f"{layer} map (the most active here is {strongest})", 0, len(maps) - 1, key=f"{key}_{layer}_map")
    source, enlarged_map, kernel = st.columns(3)
    source.image(layers.enlarged(digit, 196), caption="input")
    enlarged_map.image(layers.enlarged(maps[chosen], 196), caption=f"{layer} map {chosen}")
    if layer == "conv1":
        kernel.image(
            layers.enlarged(layers.conv1_filters(model)[chosen], 196, signed=True), caption=f"conv1 filter {chosen} (3x3)"
        )
    else:
        weights = model.conv2.weight.detach().float().cpu().numpy()[chosen]
        kernel.image(layers.grid_image(weights, columns=8, scale=8, signed=True), caption=f"conv2 filter {chosen}: 32 3x3 slices")
    with st.expander("conv1's 32 filters (3x3; red positive, blue negative weights)"):
        st.image(layers.grid_image(layers.conv1_filters(model), columns=16, scale=14, gap=3, signed=True))


def _sweep(model, original: np.ndarray, transform: probes.Transform, key: str) -> None:
    """One transformation over its whole range in one batch (the other sliders kept), with where the answer changes."""
    kind = st.segmented_control("Sweep", tuple(probes.SWEEPS), default="rotation", key=f"{key}_sweep") or "rotation"
    swept = probes.sweep(model, original, kind, base=transform)
    current = {
        "rotation": transform.rotation,
        "scale": transform.scale,
        "shift x": transform.shift_x,
        "shift y": transform.shift_y,
    }
    changes = swept.changes()
    st.plotly_chart(sweep_figure(kind, swept.values, swept.probabilities, changes, current[kind]), key=f"{key}_sweep_chart")
    if changes:
        st.caption("The answer changes at " + ", ".join(f"{value:g} ({old}→{new})" for value, old, new in changes) + ".")
    else:
        st.caption(f"The answer stays {int(swept.predictions[0])} over the whole range.")
    st.caption("Grey bar: the slider's setting now. One batched forward pass over all settings.")


def _attributions(model, digest: str, pixels_digest: str, digit: np.ndarray, predicted: int, attribution: np.ndarray) -> None:
    """Occlusion sensitivity beside integrated gradients, for the predicted class, each saying its method."""
    drops = _occlusion(digest, pixels_digest, predicted, model, digit)
    occluded, gradients = st.columns(2)
    occluded.image(probes.occlusion_overlay(digit, drops, scale=DIGIT_SCALE), caption=f"Occlusion, towards {predicted}")
    occluded.caption(
        f"Method: {probes.OCCLUSION_METHOD}; red where hiding the ink lowers the probability of {predicted} "
        f"(most: {drops.max():.1%}), blue where it raises it."
    )
    gradients.image(
        saliency_overlay(_ink_uint8(digit), attribution, scale=DIGIT_SCALE), caption=f"Integrated gradients, towards {predicted}"
    )
    gradients.caption(f"Method: {SALIENCY_METHOD}; red ink pushes towards {predicted}, blue away.")


def _nudge(model, digest: str, pixels_digest: str, digit: np.ndarray, predicted: int, key: str) -> None:
    """ "Make it a ...": the smallest L-inf change that makes the model say the chosen digit."""
    choose, run = st.columns([2, 1], vertical_alignment="bottom")
    targets = [d for d in range(10) if d != predicted]
    target = choose.selectbox("Make it a", targets, key=f"{key}_target")
    signature = (digest, pixels_digest, target)
    if run.button(f"Make it a {target}", icon=":material/auto_fix_high:", key=f"{key}_nudge_go", width="stretch"):
        st.session_state[f"{key}_nudge"] = (signature, nudge(model, digit, target))
    stored = st.session_state.get(f"{key}_nudge")
    if not stored or stored[0] != signature:
        st.caption(
            f"Finds the smallest per-pixel change (L-infinity epsilon, up to {MAX_EPSILON:g} of full ink) that makes the "
            "model say the chosen digit: a targeted FGSM step, then projected-gradient steps, with bisection on epsilon."
        )
        return
    result = stored[1]
    if not result.found:
        st.warning(result.message(), icon=":material/block:")
        return
    st.success(result.message(), icon=":material/auto_fix_high:")
    nudged, change, chart = st.columns([1, 1, 2])
    nudged.image(layers.enlarged(result.image, 168), caption=f"nudged: the model says {target}")
    change.image(
        perturbation_image(result.perturbation, result.epsilon, scale=DIGIT_SCALE),
        caption=f"the change, amplified: full red = +{result.epsilon:.3f}, full blue = -{result.epsilon:.3f}",
    )
    chart.plotly_chart(class_probability_figure(result.after), key=f"{key}_nudge_probabilities")
