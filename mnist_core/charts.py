"""Plotly figure builders: data in, figure out. Pages only pass what they read and render what comes back.

Each builder takes plain values (metric rows as `Run.metrics()` returns them,
lists, arrays) so it can be tested without a run, a model or Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from mnist_core.evaluate import NUM_CLASSES

TRAIN_COLOR = "#1f77b4"
TEST_COLOR = "#d62728"
# Per-class accuracies of a trained MnistCNN sit between 0.95 and 1; a colour scale from 0 would hide every difference.
HEATMAP_FLOOR = 0.9
METRIC_LABELS = {
    "test_acc": "Test accuracy",
    "train_acc": "Train accuracy",
    "test_loss": "Test loss",
    "train_loss": "Train loss",
    "lr": "Learning rate",
    "samples_per_s": "Samples/s",
}

Rows = Sequence[Mapping[str, float]]


def _layout(title: str, x_title: str, y_title: str, xaxis: dict | None = None, yaxis: dict | None = None, **options) -> dict:
    """The house layout, with each figure's own axis settings and options on top.

    Figures are built in one `go.Figure(traces, layout)` call: Plotly validates the layout once, where each
    `update_layout`/`update_xaxes` call validates again (the Draw page's chart took 25 ms to build that way, 4 ms now).
    """
    layout = dict(
        title=title,
        xaxis=dict(title=x_title, **(xaxis or {})),
        yaxis=dict(title=y_title, **(yaxis or {})),
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        hovermode="x unified",
        height=320,
    )
    return {**layout, **options}


def _accuracy_axis(values: Sequence[float]) -> dict:
    """Percent ticks, zoomed on the data but never past 100% (Plotly's autorange pads a flat line to 150%)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return dict(tickformat=".1%")
    low, high = min(finite), max(finite)
    pad = max((high - low) * 0.1, 0.005)
    return dict(tickformat=".1%", range=[max(0.0, low - pad), min(1.0, high) + pad / 2])


def _epoch_axis(epochs: int, per_tick: int = 10) -> dict:
    # Whole epochs only: a fractional tick ("1.5") would suggest a measurement that does not exist.
    return dict(tickmode="linear", tick0=1, dtick=max(1, epochs // per_tick))


# Every digit labelled on a class axis, however narrow the chart.
_DIGIT_AXIS = dict(type="category", tickmode="array", tickvals=[str(d) for d in range(NUM_CLASSES)])


def train_test_figure(rows: Rows, metric: str, epochs: int | None = None) -> go.Figure:
    """Train vs test curves of `metric` ("loss" or "acc") per epoch; `epochs` (planned) fixes the x axis while a run trains."""
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    done = [int(row["epoch"]) for row in rows]
    traces = [
        go.Scatter(x=done, y=[row[f"{split}_{metric}"] for row in rows], name=split, mode="lines+markers", line=dict(color=color))
        for split, color in (("train", TRAIN_COLOR), ("test", TEST_COLOR))
    ]
    xaxis = _epoch_axis(len(rows))
    if epochs:
        # The whole run's width from the start, so the curves visibly fill it in.
        xaxis.update(range=[0.5, max(epochs, len(rows)) + 0.5], dtick=max(1, epochs // 10))
    if metric == "acc":
        title, y_title = "Accuracy per epoch", "accuracy"
        yaxis = _accuracy_axis([row[f"{split}_acc"] for row in rows for split in ("train", "test")])
    else:
        title, y_title, yaxis = "Loss per epoch", "cross-entropy", None
    return go.Figure(traces, _layout(title, "epoch", y_title, xaxis=xaxis, yaxis=yaxis))


def per_class_figure(accuracies: Sequence[float], title: str = "Test accuracy per digit") -> go.Figure:
    """Bars of accuracy for digits 0-9, the weakest highlighted; the axis zooms in on the range the bars use."""
    values = [float(v) for v in accuracies]
    if len(values) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} accuracies, got {len(values)}")
    weakest = min(range(NUM_CLASSES), key=values.__getitem__)
    colors = [TEST_COLOR if d == weakest else TRAIN_COLOR for d in range(NUM_CLASSES)]
    bars = go.Bar(
        x=[str(d) for d in range(NUM_CLASSES)],
        y=values,
        marker_color=colors,
        text=[f"{v:.1%}" for v in values],
        textposition="outside",
        hovertemplate="digit %{x}: %{y:.2%}<extra></extra>",
    )
    low = min(values)
    # Leave room under the lowest bar and above the highest label.
    yaxis = dict(range=[max(0.0, low - (1.0 - low) * 0.5 - 0.01), 1.0 + (1.0 - low) * 0.25 + 0.005], tickformat=".0%")
    return go.Figure(
        bars, _layout(title, "digit", "accuracy", xaxis=_DIGIT_AXIS, yaxis=yaxis, hovermode="closest", showlegend=False)
    )


def overlay_figure(series: Mapping[str, Rows], metric: str = "test_acc") -> go.Figure:
    """One line per run of `metric` against epoch, to compare runs."""
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be one of {', '.join(METRIC_LABELS)}, got {metric!r}")
    traces = [
        go.Scatter(x=[int(row["epoch"]) for row in rows], y=[row[metric] for row in rows], name=label, mode="lines+markers")
        for label, rows in series.items()
    ]
    xaxis = _epoch_axis(max((len(rows) for rows in series.values()), default=0))
    yaxis = _accuracy_axis([row[metric] for rows in series.values() for row in rows]) if metric.endswith("_acc") else None
    title = f"{METRIC_LABELS[metric]} by epoch"
    return go.Figure(
        traces, _layout(title, "epoch", METRIC_LABELS[metric].lower(), xaxis=xaxis, yaxis=yaxis, hovermode="closest")
    )


def per_class_heatmap(rows: Rows) -> go.Figure:
    """Test accuracy of each digit (rows) at each epoch (columns): which digits are learned late."""
    epochs = [int(row["epoch"]) for row in rows]
    z = [[row.get(f"test_acc_{d}", float("nan")) for row in rows] for d in range(NUM_CLASSES)]
    heatmap = go.Heatmap(
        x=epochs,
        y=[str(d) for d in range(NUM_CLASSES)],
        z=z,
        zmin=HEATMAP_FLOOR,
        zmax=1.0,
        colorscale="Viridis",
        colorbar=dict(title="accuracy", tickformat=".0%"),
        text=[["" if math.isnan(v) else f"{v:.1%}" for v in line] for line in z],
        texttemplate="%{text}" if len(epochs) <= 12 else None,
        hovertemplate="digit %{y}, epoch %{x}: %{z:.2%}<extra></extra>",
    )
    yaxis = dict(autorange="reversed", type="category")
    xaxis = _epoch_axis(len(epochs), per_tick=15)
    layout = _layout(
        "Test accuracy per digit and epoch", "epoch", "digit", xaxis=xaxis, yaxis=yaxis, hovermode="closest", height=420
    )
    return go.Figure(heatmap, layout)


# A qualitative palette with ten distinguishable colours, one per digit (Plotly's default sequence).
DIGIT_COLORS = (
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52",
)  # fmt: skip


def class_probability_figure(probabilities: Sequence[float], true_label: int | None = None) -> go.Figure:
    """Bars of the 10 class probabilities of one sample; the predicted class red, the given label outlined."""
    values = [float(p) for p in probabilities]
    if len(values) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} probabilities, got {len(values)}")
    predicted = max(range(NUM_CLASSES), key=values.__getitem__)
    colors = [TEST_COLOR if d == predicted else TRAIN_COLOR for d in range(NUM_CLASSES)]
    outline = [3 if d == true_label else 0 for d in range(NUM_CLASSES)]
    bars = go.Bar(
        x=[str(d) for d in range(NUM_CLASSES)],
        y=values,
        marker=dict(color=colors, line=dict(color="black", width=outline)),
        text=[f"{v:.0%}" if v >= 0.005 else "" for v in values],
        textposition="outside",
        hovertemplate="digit %{x}: %{y:.2%}<extra></extra>",
    )
    yaxis = dict(range=[0, 1.12], tickformat=".0%")
    layout = _layout(
        "Class probabilities",
        "digit",
        "probability",
        xaxis=_DIGIT_AXIS,
        yaxis=yaxis,
        hovermode="closest",
        showlegend=False,
        height=280,
    )
    return go.Figure(bars, layout)


def embedding_figure(
    projection: np.ndarray, labels: np.ndarray, predictions: np.ndarray, indices: np.ndarray, title: str = "Feature map (PCA)"
) -> go.Figure:
    """Scatter of 2-D points coloured by true class, errors ringed in black; customdata is (sample index, prediction)."""
    indices = np.asarray(indices)
    xy, true, predicted = projection[indices], labels[indices], predictions[indices]
    # Numbers only (no per-point strings): Plotly validates and copies 10,000 strings ten times slower than arrays.
    hover = "#%{customdata[0]}: true %{meta} → %{customdata[1]}<extra></extra>"
    traces = []
    for digit in range(NUM_CLASSES):
        members = true == digit
        traces.append(
            go.Scattergl(
                x=xy[members, 0],
                y=xy[members, 1],
                mode="markers",
                name=str(digit),
                meta=digit,
                marker=dict(color=DIGIT_COLORS[digit], size=4, opacity=0.6),
                customdata=np.stack([indices[members], predicted[members]], axis=1),
                hovertemplate=hover,
            )
        )
    wrong = true != predicted
    traces.append(
        go.Scattergl(
            x=xy[wrong, 0],
            y=xy[wrong, 1],
            mode="markers",
            name="misclassified",
            marker=dict(symbol="circle-open", color="black", size=9, line=dict(width=1.5)),
            customdata=np.stack([indices[wrong], predicted[wrong], true[wrong]], axis=1),
            hovertemplate="#%{customdata[0]}: true %{customdata[2]} → %{customdata[1]}<extra></extra>",
        )
    )
    # A vertical legend at the side: eleven entries in a row would cover the title and the top of the map.
    legend = dict(title="true digit", orientation="v", x=1.02, xanchor="left", y=1.0, yanchor="top")
    layout = _layout(title, "component 1", "component 2", hovermode="closest", height=460, dragmode="lasso", legend=legend)
    return go.Figure(traces, layout)


RIGHT_COLOR = "#2ca02c"


def sample_story_figure(
    epochs: Sequence[int], given: Sequence[float], final: Sequence[float], given_label: int, final_label: int
) -> go.Figure:
    """One sample over training: p(given label) and p(final prediction) after each epoch (one line when they agree)."""
    traces = [
        go.Scatter(
            x=list(epochs), y=list(given), name=f"p(given {given_label})", mode="lines+markers", line=dict(color=TRAIN_COLOR)
        )
    ]
    if final_label != given_label:
        traces.append(
            go.Scatter(
                x=list(epochs),
                y=list(final),
                name=f"p(final prediction {final_label})",
                mode="lines+markers",
                line=dict(color=TEST_COLOR),
            )
        )
    layout = _layout(
        "This sample through training",
        "epoch",
        "probability",
        xaxis=_epoch_axis(len(epochs)),
        yaxis=dict(range=[0, 1.05], tickformat=".0%"),
        # Below the plot: in the detail's narrow column a legend beside the title runs into it.
        legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0.0),
        margin=dict(l=10, r=10, t=40, b=10),
        height=290,
    )
    return go.Figure(traces, layout)


def cartography_figure(
    confidence: np.ndarray, variability: np.ndarray, correct: np.ndarray, indices: np.ndarray, title: str = "Dataset cartography"
) -> go.Figure:
    """Variability (x) against confidence (y) of the given label, one point per sample, coloured by final correctness;
    customdata is the sample index, so a box or lasso selection names the samples."""
    indices = np.asarray(indices)
    traces = []
    for name, color, members in (
        ("right at the end", RIGHT_COLOR, correct[indices]),
        ("wrong at the end", TEST_COLOR, ~correct[indices]),
    ):
        chosen = indices[members]
        traces.append(
            go.Scattergl(
                x=variability[chosen],
                y=confidence[chosen],
                mode="markers",
                name=name,
                marker=dict(color=color, size=4, opacity=0.6),
                customdata=chosen[:, None],
                hovertemplate="#%{customdata[0]}: confidence %{y:.2f}, variability %{x:.2f}<extra></extra>",
            )
        )
    layout = _layout(
        title,
        "variability (std of p(given) over epochs)",
        "confidence (mean p(given))",
        yaxis=dict(range=[-0.02, 1.02]),
        hovermode="closest",
        height=400,
        dragmode="lasso",
    )
    return go.Figure(traces, layout)


def compare_per_class_figure(per_class: Mapping[str, Mapping[str, float]], a_name: str = "A", b_name: str = "B") -> go.Figure:
    """Grouped bars: model A's and model B's accuracy on each given digit ({'0': {'a': .., 'b': ..}, ...})."""
    digits = [str(d) for d in range(NUM_CLASSES)]
    traces = [
        go.Bar(
            x=digits,
            y=[per_class[d][side] for d in digits],
            name=name,
            marker=dict(color=color),
            hovertemplate=f"{name}, digit %{{x}}: %{{y:.2%}}<extra></extra>",
        )
        for side, name, color in (("a", a_name, TRAIN_COLOR), ("b", b_name, TEST_COLOR))
    ]
    yaxis = _accuracy_axis([per_class[d][side] for d in digits for side in ("a", "b")])
    layout = _layout("Accuracy per digit, A against B", "digit", "accuracy", xaxis=_DIGIT_AXIS, yaxis=yaxis, barmode="group")
    return go.Figure(traces, layout)


ROBUSTNESS_COLORS = {
    "rotation": "#1f77b4",
    "shift": "#ff7f0e",
    "scale": "#2ca02c",
    "noise": "#d62728",
    "blur": "#9467bd",
    "thickness": "#8c564b",
    "occlusion": "#7f7f7f",
}


# Each corruption's severities in its own unit; the labels must differ between kinds, or Plotly's two-level axis merges them.
SEVERITY_LABELS = {
    "rotation": "{:g}°",
    "shift": "{:g} px",
    "scale": "×{:g}",
    "noise": "sd {:g}",
    "blur": "σ {:g}",
    "thickness": "{:+g}",
    "occlusion": "{0:g}×{0:g}",
}


def robustness_figure(report: Mapping, title: str = "Robustness") -> go.Figure:
    """Test accuracy under each corruption (bars grouped by kind, one per severity) with the clean accuracy as a dashed line.

    The accuracy axis always runs from 0 to 100%, so two models' figures side by side compare at a glance.
    """
    kinds, severities, accuracies, colors = [], [], [], []
    for kind, rows in report["corruptions"].items():
        for row in rows:
            kinds.append(kind)
            severities.append(SEVERITY_LABELS.get(kind, "{:g}").format(row["severity"]))
            accuracies.append(float(row["accuracy"]))
            colors.append(ROBUSTNESS_COLORS.get(kind, TRAIN_COLOR))
    bars = go.Bar(
        x=[kinds, severities],
        y=accuracies,
        marker=dict(color=colors),
        text=[f"{a:.0%}" for a in accuracies],
        textposition="outside",
        textfont=dict(size=9),
        hovertemplate="%{x}: %{y:.2%}<extra></extra>",
        name="corrupted",
    )
    clean = float(report["clean"])
    line = dict(type="line", xref="paper", x0=0, x1=1, y0=clean, y1=clean, line=dict(color="black", dash="dash", width=1))
    note = dict(xref="paper", x=1, y=clean, yanchor="bottom", xanchor="right", text=f"clean {clean:.2%}", showarrow=False)
    layout = _layout(
        title,
        "corruption and severity",
        "test accuracy",
        yaxis=dict(range=[0, 1.1], tickformat=".0%"),
        hovermode="closest",
        showlegend=False,
        height=360,
        shapes=[line],
        annotations=[note],
    )
    return go.Figure(bars, layout)


def sweep_figure(
    kind: str, values: Sequence[float], probabilities: np.ndarray, changes: Sequence[tuple[float, int, int]], current: float
) -> go.Figure:
    """Each class's probability along a sweep of one transformation; dotted lines where the prediction changes."""
    traces = [
        go.Scatter(
            x=list(values),
            y=probabilities[:, digit],
            mode="lines",
            name=str(digit),
            line=dict(color=DIGIT_COLORS[digit], width=2),
            hovertemplate=f"{digit}: %{{y:.1%}}<extra></extra>",
        )
        for digit in range(NUM_CLASSES)
    ]
    shapes = [
        dict(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color="black", dash="dot", width=1))
        for x, _, _ in changes
    ]
    shapes.append(dict(type="line", x0=current, x1=current, y0=0, y1=1, yref="paper", line=dict(color="#bbbbbb", width=6)))
    notes = [
        dict(x=x, y=1.0, yref="paper", text=f"{old}→{new}", showarrow=False, yanchor="bottom", font=dict(size=11))
        for x, old, new in changes
    ]
    legend = dict(title="digit", orientation="v", x=1.02, xanchor="left", y=1.0, yanchor="top")
    layout = _layout(
        f"Probabilities as {kind} sweeps its range",
        kind,
        "probability",
        yaxis=dict(range=[0, 1.02], tickformat=".0%"),
        shapes=shapes,
        annotations=notes,
        legend=legend,
        height=300,
        margin=dict(l=10, r=10, t=60, b=10),
    )
    return go.Figure(traces, layout)


def step_curves_figure(steps: Rows, rows: Rows, metric: str, epochs: int | None = None) -> go.Figure:
    """Training `metric` ("loss" or "acc") every few dozen batches, raw (faint) and smoothed, with the per-epoch
    test points on the same axes; x is the position in epochs (2.5 = half way through epoch 3)."""
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    from mnist_core.steps import smooth

    x = [row["epoch"] for row in steps]
    raw = [row[metric] for row in steps]
    traces = [
        go.Scatter(x=x, y=raw, name="train (raw)", mode="lines", line=dict(color=TRAIN_COLOR, width=1), opacity=0.3),
        go.Scatter(x=x, y=smooth(raw), name="train (smoothed)", mode="lines", line=dict(color=TRAIN_COLOR, width=2)),
        go.Scatter(
            x=[row["epoch"] for row in rows],
            y=[row[f"test_{metric}"] for row in rows],
            name="test (end of epoch)",
            mode="markers",
            marker=dict(color=TEST_COLOR, size=9),
        ),
    ]
    xaxis = dict(
        range=[0, max(epochs or 0, max(x, default=0), len(rows))], tick0=0, dtick=max(1, (epochs or len(rows) or 1) // 10)
    )
    if metric == "acc":
        title, y_title = "Accuracy during training", "accuracy"
        yaxis = _accuracy_axis(raw + [row["test_acc"] for row in rows])
    else:
        title, y_title, yaxis = "Loss during training", "cross-entropy", None
    return go.Figure(traces, _layout(title, "epoch", y_title, xaxis=xaxis, yaxis=yaxis))
