"""The training and runs figures, checked as data: traces, axes and values."""

from __future__ import annotations

import math

import pytest

from mnist_core import charts


def _row(epoch: int, test_acc: float, per_class: list[float] | None = None) -> dict[str, float]:
    row = {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "train_acc": 0.9 + epoch / 100,
        "test_loss": 0.5 / epoch,
        "test_acc": test_acc,
        "lr": 1e-3,
        "samples_per_s": 2000.0,
    }
    for digit, value in enumerate(per_class or [test_acc] * 10):
        row[f"test_acc_{digit}"] = value
    return row


ROWS = [_row(1, 0.97), _row(2, 0.985), _row(3, 0.99)]


@pytest.mark.parametrize("metric", ["loss", "acc"])
def test_train_test_figure_has_a_train_and_a_test_curve_per_epoch(metric):
    figure = charts.train_test_figure(ROWS, metric)
    assert [trace.name for trace in figure.data] == ["train", "test"]
    train, test = figure.data
    assert list(train.x) == [1, 2, 3] and list(test.x) == [1, 2, 3]
    assert list(train.y) == [row[f"train_{metric}"] for row in ROWS]
    assert list(test.y) == [row[f"test_{metric}"] for row in ROWS]
    assert figure.layout.xaxis.title.text == "epoch"
    assert figure.layout.xaxis.dtick == 1  # whole epochs only


def test_accuracy_figure_formats_the_axis_as_percent_and_loss_does_not():
    assert charts.train_test_figure(ROWS, "acc").layout.yaxis.tickformat == ".1%"
    assert charts.train_test_figure(ROWS, "loss").layout.yaxis.tickformat is None


def test_accuracy_axes_stay_within_100_percent_even_for_a_flat_line():
    flat = [_row(1, 0.944), _row(2, 0.944)]
    for figure in (charts.overlay_figure({"a": flat}, "test_acc"), charts.train_test_figure(flat, "acc")):
        low, high = figure.layout.yaxis.range
        assert low < 0.944 < high <= 1.01
    low, high = charts.overlay_figure({"a": [_row(1, 0.5), _row(2, 1.0)]}, "test_acc").layout.yaxis.range
    assert low < 0.5 and 1.0 < high <= 1.03


def test_train_test_figure_spans_the_planned_epochs_while_a_run_trains():
    figure = charts.train_test_figure(ROWS[:1], "loss", epochs=10)
    assert tuple(figure.layout.xaxis.range) == (0.5, 10.5)
    assert figure.layout.xaxis.dtick == 1
    assert charts.train_test_figure(ROWS, "loss").layout.xaxis.range is None  # otherwise Plotly fits the data


def test_train_test_figure_with_no_epochs_yet_has_empty_curves():
    figure = charts.train_test_figure([], "loss")
    assert len(figure.data) == 2
    assert all(len(trace.x) == 0 for trace in figure.data)


def test_train_test_figure_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        charts.train_test_figure(ROWS, "f1")


def test_per_class_figure_has_ten_bars_and_marks_the_weakest_digit():
    values = [0.99, 0.995, 0.98, 0.99, 0.97, 0.99, 0.99, 0.99, 0.96, 0.99]
    figure = charts.per_class_figure(values)
    (bars,) = figure.data
    assert list(bars.x) == [str(d) for d in range(10)]
    assert list(figure.layout.xaxis.tickvals) == [str(d) for d in range(10)]  # no digit label skipped
    assert list(bars.y) == values
    assert bars.marker.color[8] == charts.TEST_COLOR
    assert [c for c in bars.marker.color].count(charts.TEST_COLOR) == 1
    assert bars.text[8] == "96.0%"
    low, high = figure.layout.yaxis.range
    assert low < 0.96 and high > 1.0  # every bar and its label fit
    assert low > 0.5  # zoomed in: from 0 the differences would be invisible


def test_per_class_figure_axis_stays_sane_at_zero_and_one():
    low, _ = charts.per_class_figure([0.0] * 10).layout.yaxis.range
    assert low == 0.0
    low, high = charts.per_class_figure([1.0] * 10).layout.yaxis.range
    assert low < 1.0 < high


def test_per_class_figure_needs_ten_values():
    with pytest.raises(ValueError, match="10"):
        charts.per_class_figure([0.9] * 9)


def test_overlay_figure_draws_one_line_per_run():
    other = [_row(1, 0.95), _row(2, 0.96)]
    figure = charts.overlay_figure({"run-a": ROWS, "run-b": other}, "test_acc")
    assert [trace.name for trace in figure.data] == ["run-a", "run-b"]
    assert list(figure.data[0].y) == [0.97, 0.985, 0.99]
    assert list(figure.data[1].x) == [1, 2]
    assert figure.layout.yaxis.title.text == "test accuracy"
    assert figure.layout.yaxis.tickformat == ".1%"


def test_overlay_figure_of_a_loss_is_not_in_percent():
    figure = charts.overlay_figure({"run-a": ROWS}, "train_loss")
    assert list(figure.data[0].y) == [1.0, 0.5, 1 / 3]
    assert figure.layout.yaxis.tickformat is None


def test_overlay_figure_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        charts.overlay_figure({"run-a": ROWS}, "precision")


def test_per_class_heatmap_has_a_row_per_digit_and_a_column_per_epoch():
    late_seven = [[0.99] * 10 for _ in range(3)]
    late_seven[0][7], late_seven[1][7] = 0.5, 0.9
    rows = [_row(epoch + 1, 0.98, per_class) for epoch, per_class in enumerate(late_seven)]
    figure = charts.per_class_heatmap(rows)
    (heatmap,) = figure.data
    assert list(heatmap.x) == [1, 2, 3]
    assert list(heatmap.y) == [str(d) for d in range(10)]
    assert len(heatmap.z) == 10 and all(len(line) == 3 for line in heatmap.z)
    assert list(heatmap.z[7]) == [0.5, 0.9, 0.99]
    assert heatmap.text[7][0] == "50.0%"
    assert heatmap.zmax == 1.0 and heatmap.zmin == charts.HEATMAP_FLOOR
    assert figure.layout.yaxis.autorange == "reversed"  # digit 0 on top, like a table


def test_per_class_heatmap_marks_a_missing_column_as_nan():
    row = _row(1, 0.9)
    del row["test_acc_3"]
    (heatmap,) = charts.per_class_heatmap([row]).data
    assert math.isnan(heatmap.z[3][0])
    assert heatmap.text[3][0] == ""
