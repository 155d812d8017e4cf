"""Stills of Explore's figures (mnist_core/stills.py): what the picture shows, read back from its pixels."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image, ImageColor

from mnist_core import charts, stills

RED, BLUE = "#d62728", "#1f77b4"


def _pixels(figure: go.Figure, width: int = 400) -> np.ndarray:
    """The still as an (H, W, 3) array, read back from its PNG."""
    return np.asarray(Image.open(io.BytesIO(stills.png(figure, width))).convert("RGB")).astype(int)


def _where(pixels: np.ndarray, color: str, tolerance: int = 6) -> np.ndarray:
    """(row, column) of every pixel of exactly this colour (anti-aliased edges aside)."""
    target = np.array(ImageColor.getrgb(color)[:3])
    return np.argwhere(np.abs(pixels - target).max(axis=2) <= tolerance)


def _scatter(points: dict[str, tuple[float, float]], **marker) -> go.Figure:
    traces = [
        go.Scatter(x=[x], y=[y], mode="markers", name=color, marker=dict(color=color, size=12, **marker))
        for color, (x, y) in points.items()
    ]
    layout = dict(height=300, xaxis=dict(range=[0, 10]), yaxis=dict(range=[0, 10]), showlegend=False)
    return go.Figure(traces, layout)


def test_a_still_has_the_figures_height_and_the_given_width_at_twice_the_density():
    image = Image.open(io.BytesIO(stills.png(_scatter({RED: (5, 5)}), 400)))
    assert image.format == "PNG" and image.size == (400 * stills.SCALE, 300 * stills.SCALE)


def test_points_lie_where_their_coordinates_say():
    pixels = _pixels(_scatter({RED: (2, 8), BLUE: (8, 2)}))
    red, blue = _where(pixels, RED).mean(axis=0), _where(pixels, BLUE).mean(axis=0)
    assert red[1] < blue[1]  # x = 2 left of x = 8
    assert red[0] < blue[0]  # y = 8 above y = 2 (image rows grow downwards)
    # The axis is linear: equal steps in the data are equal steps on the picture.
    centres = [_where(_pixels(_scatter({RED: (x, 5)})), RED).mean(axis=0)[1] for x in (2, 4, 6)]
    assert centres[1] - centres[0] == pytest.approx(centres[2] - centres[1], abs=1.0) and centres[1] > centres[0]


def test_points_outside_the_axis_range_are_not_drawn_and_missing_values_are_skipped():
    figure = _scatter({RED: (50, 5), BLUE: (5, 5)})
    figure.add_trace(go.Scatter(x=[np.nan, 3.0], y=[5.0, np.nan], mode="markers", marker=dict(color="#00cc96", size=12)))
    pixels = _pixels(figure)
    assert len(_where(pixels, RED)) == 0  # x = 50 on an axis to 10: cut at the plot's edge, as Plotly does
    assert len(_where(pixels, BLUE)) > 50
    assert len(_where(pixels, "#00cc96")) == 0


def test_open_markers_are_rings_and_opacity_blends_with_the_background():
    ring = _pixels(_scatter({RED: (5, 5)}, symbol="circle-open", line=dict(width=2)))
    red = _where(ring, RED)
    centre = red.mean(axis=0).round().astype(int)
    # The middle of a ring is not filled: there the picture shows what lies behind it (background or grid).
    assert len(red) > 20 and np.abs(ring[centre[0], centre[1]] - np.array(ImageColor.getrgb(RED))).max() > 100
    faint = _pixels(_scatter({RED: (5, 5)}, opacity=0.5))
    assert len(_where(faint, RED)) == 0  # no pixel at full strength
    blended = (np.array(ImageColor.getrgb(RED)) + 255) / 2
    assert len(np.argwhere(np.abs(faint - blended).max(axis=2) <= 3)) > 50


def test_bars_rise_to_their_values_in_their_own_colours_with_the_given_label_outlined():
    probabilities = [0.02, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.08, 0.0]
    pixels = _pixels(charts.class_probability_figure(probabilities, true_label=8), width=300)
    predicted = _where(pixels, charts.TEST_COLOR)  # the prediction's bar (digit 3) is red
    others = _where(pixels, charts.TRAIN_COLOR)
    predicted_height = np.ptp(predicted[:, 0])
    assert predicted_height > 150  # 90% of a 280-pixel chart's plot area, at twice the density
    # Digit 8's bar: blue, a tenth of the height, and right of the red one.
    eight = others[others[:, 1] > predicted[:, 1].max()]
    assert 0.05 < np.ptp(eight[:, 0]) / predicted_height < 0.15
    outline = _where(pixels, "#000000", tolerance=20)
    assert len(outline) and outline[:, 1].min() > predicted[:, 1].max()  # only the given label's bar is outlined


def test_grouped_bars_stand_side_by_side_and_are_cut_at_an_axis_that_does_not_start_at_zero():
    per_class = {str(d): {"a": 0.98, "b": 0.99} for d in range(10)}
    figure = charts.compare_per_class_figure(per_class)  # its accuracy axis starts near 0.98, not at 0
    figure.update_layout(showlegend=False)  # only bars in these colours
    pixels = _pixels(figure, width=600)
    a, b = _where(pixels, charts.TRAIN_COLOR), _where(pixels, charts.TEST_COLOR)
    assert len(a) and len(b)
    # In each digit's slot A stands left of B, and B (0.99) is taller.
    assert a[:, 1].min() < b[:, 1].min() and np.ptp(b[:, 0]) > np.ptp(a[:, 0])
    # No bar reaches below the plot area into the tick labels: the lowest bar pixels end at one row for both.
    assert a[:, 0].max() == pytest.approx(b[:, 0].max(), abs=2)


def test_the_feature_map_shows_every_digits_colour_and_its_legend():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    projection = (rng.normal(size=(300, 2)) + labels[:, None] * 3).astype(np.float32)
    figure = charts.embedding_figure(projection, labels, labels, np.arange(300))
    pixels = _pixels(figure, width=500)
    plot_right = pixels.shape[1] * 0.75
    for color in charts.DIGIT_COLORS:
        found = _where(pixels, color, tolerance=4)
        assert len(found), color
        # The legend's swatches, at full strength, are right of the points (which are drawn at opacity 0.6).
        assert found[:, 1].min() > plot_right, color


def test_a_figure_with_no_points_still_draws():
    figure = charts.embedding_figure(np.zeros((0, 2), np.float32), np.zeros(0, int), np.zeros(0, int), np.zeros(0, int))
    image = Image.open(io.BytesIO(stills.png(figure, 300)))
    assert image.size == (300 * stills.SCALE, 460 * stills.SCALE)
