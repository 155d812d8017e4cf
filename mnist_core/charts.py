"""Plotly figure builders: data in, figure out. Pages only pass what they read and render what comes back.

Each builder takes plain values (metric rows as `Run.metrics()` returns them,
lists, arrays) so it can be tested without a run, a model or Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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


def _layout(figure: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        hovermode="x unified",
        height=320,
    )
    return figure


def _epoch_axis(figure: go.Figure, rows: Rows) -> None:
    # Whole epochs only: a fractional tick ("1.5") would suggest a measurement that does not exist.
    figure.update_xaxes(tickmode="linear", tick0=1, dtick=max(1, len(rows) // 10))


def train_test_figure(rows: Rows, metric: str) -> go.Figure:
    """Train vs test curves of `metric` ("loss" or "acc") per epoch."""
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    epochs = [int(row["epoch"]) for row in rows]
    figure = go.Figure()
    for split, color in (("train", TRAIN_COLOR), ("test", TEST_COLOR)):
        figure.add_trace(
            go.Scatter(
                x=epochs,
                y=[row[f"{split}_{metric}"] for row in rows],
                name=split,
                mode="lines+markers",
                line=dict(color=color),
            )
        )
    title = "Loss per epoch" if metric == "loss" else "Accuracy per epoch"
    _layout(figure, title, "epoch", "cross-entropy" if metric == "loss" else "accuracy")
    if metric == "acc":
        figure.update_yaxes(tickformat=".1%")
    _epoch_axis(figure, rows)
    return figure


def per_class_figure(accuracies: Sequence[float], title: str = "Test accuracy per digit") -> go.Figure:
    """Bars of accuracy for digits 0-9, the weakest highlighted; the axis zooms in on the range the bars use."""
    values = [float(v) for v in accuracies]
    if len(values) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} accuracies, got {len(values)}")
    weakest = min(range(NUM_CLASSES), key=values.__getitem__)
    colors = [TEST_COLOR if d == weakest else TRAIN_COLOR for d in range(NUM_CLASSES)]
    figure = go.Figure(
        go.Bar(
            x=[str(d) for d in range(NUM_CLASSES)],
            y=values,
            marker_color=colors,
            text=[f"{v:.1%}" for v in values],
            textposition="outside",
            hovertemplate="digit %{x}: %{y:.2%}<extra></extra>",
        )
    )
    _layout(figure, title, "digit", "accuracy")
    low = min(values)
    # Leave room under the lowest bar and above the highest label.
    figure.update_yaxes(range=[max(0.0, low - (1.0 - low) * 0.5 - 0.01), 1.0 + (1.0 - low) * 0.25 + 0.005], tickformat=".0%")
    figure.update_layout(hovermode="closest", showlegend=False)
    return figure


def overlay_figure(series: Mapping[str, Rows], metric: str = "test_acc") -> go.Figure:
    """One line per run of `metric` against epoch, to compare runs."""
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be one of {', '.join(METRIC_LABELS)}, got {metric!r}")
    figure = go.Figure()
    for label, rows in series.items():
        figure.add_trace(
            go.Scatter(
                x=[int(row["epoch"]) for row in rows],
                y=[row[metric] for row in rows],
                name=label,
                mode="lines+markers",
            )
        )
    _layout(figure, f"{METRIC_LABELS[metric]} by epoch", "epoch", METRIC_LABELS[metric].lower())
    if metric.endswith("_acc"):
        figure.update_yaxes(tickformat=".1%")
    figure.update_layout(hovermode="closest")
    figure.update_xaxes(tickmode="linear", tick0=1, dtick=max(1, max((len(r) for r in series.values()), default=0) // 10))
    return figure


def per_class_heatmap(rows: Rows) -> go.Figure:
    """Test accuracy of each digit (rows) at each epoch (columns): which digits are learned late."""
    epochs = [int(row["epoch"]) for row in rows]
    z = [[row.get(f"test_acc_{d}", float("nan")) for row in rows] for d in range(NUM_CLASSES)]
    figure = go.Figure(
        go.Heatmap(
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
    )
    _layout(figure, "Test accuracy per digit and epoch", "epoch", "digit")
    figure.update_layout(hovermode="closest", height=420)
    figure.update_xaxes(tickmode="linear", tick0=1, dtick=max(1, len(epochs) // 15))
    figure.update_yaxes(autorange="reversed", type="category")
    return figure
