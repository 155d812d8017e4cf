"""The explorer's queries and figures, on hand-made analyses (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core import charts, gallery
from mnist_core.analysis import Analysis
from mnist_core.saliency import saliency_overlay
from ui import selection


def _analysis(labels, predictions, confidence, losses=None, features=None, split="test") -> Analysis:
    """An Analysis whose argmax is `predictions` with max probability `confidence`."""
    labels = np.asarray(labels)
    n = len(labels)
    probabilities = np.zeros((n, 10), np.float32)
    for i, (p, c) in enumerate(zip(predictions, confidence)):
        probabilities[i] = (1 - c) / 9
        probabilities[i, p] = c
    return Analysis(
        digest="d" * 64,
        split=split,
        data_checksum="c" * 64,
        probabilities=probabilities,
        labels=labels.astype(np.int64),
        losses=np.asarray(losses if losses is not None else np.zeros(n), np.float32),
        features=np.asarray(features if features is not None else np.zeros((n, 4)), np.float32),
    )


@pytest.fixture
def sample() -> Analysis:
    #        index:   0    1    2    3    4    5    6
    labels = [7, 7, 7, 2, 2, 7, 1]
    predictions = [2, 7, 2, 2, 7, 2, 1]
    confidence = [0.6, 0.99, 0.9, 0.95, 0.7, 0.9, 0.8]
    losses = [2.0, 0.01, 3.0, 0.05, 1.5, 2.5, 0.2]
    return _analysis(labels, predictions, confidence, losses)


def test_confusion_cell_selects_exactly_its_samples(sample):
    cell = gallery.select(sample, gallery.GalleryQuery(true=7, predicted=2))
    assert sorted(cell.tolist()) == [0, 2, 5]
    assert len(cell) == sample.evaluation.confusion[7, 2]
    # A diagonal cell holds only correct samples, so it needs errors_only=False.
    assert gallery.select(sample, gallery.GalleryQuery(true=7, predicted=7)).tolist() == []
    assert gallery.select(sample, gallery.GalleryQuery(true=7, predicted=7, errors_only=False)).tolist() == [1]


def test_orders_filters_and_subset(sample):
    errors = gallery.GalleryQuery()
    # Confidence descending, ties (2 and 5, both 0.9) by index.
    assert gallery.select(sample, errors).tolist() == [2, 5, 4, 0]
    assert gallery.select(sample, gallery.GalleryQuery(sort="loss")).tolist() == [2, 5, 0, 4]
    assert gallery.select(sample, gallery.GalleryQuery(sort="index", errors_only=False)).tolist() == list(range(7))
    assert gallery.select(sample, gallery.GalleryQuery(true=2)).tolist() == [4]
    assert gallery.select(sample, gallery.GalleryQuery(predicted=2, errors_only=False)).tolist() == [3, 2, 5, 0]
    subset = gallery.GalleryQuery(subset=(6, 5, 0, 99), errors_only=False, sort="index")
    assert gallery.select(sample, subset).tolist() == [0, 5, 6]
    with pytest.raises(ValueError):
        gallery.GalleryQuery(sort="random")


def test_paging():
    items = np.arange(50)
    assert gallery.page_count(0) == 1 and gallery.page_count(24) == 1 and gallery.page_count(25) == 2
    assert gallery.page_slice(items, 1).tolist() == list(range(24))
    assert gallery.page_slice(items, 3).tolist() == [48, 49]
    assert gallery.page_slice(items, 9).tolist() == [48, 49]  # clamped to the last page
    assert gallery.page_slice(items, 0).tolist() == list(range(24))


def test_caption_and_tables(sample):
    assert gallery.caption(sample, 0) == "7 → 2 (60%)"
    counts = gallery.confusion_table(sample.evaluation.confusion)
    assert counts.loc["true 7", "2"] == 3 and counts.loc["true 7", "7"] == 1 and counts.values.sum() == 7
    shares = gallery.confusion_table(sample.evaluation.confusion, normalized=True)
    assert shares.loc["true 7", "2"] == pytest.approx(0.75)
    assert np.allclose(shares.values.sum(axis=1)[[1, 2, 7]], 1) and shares.loc["true 0"].sum() == 0
    html = gallery.styled_confusion(sample.evaluation.confusion).to_html()
    assert "rgba(214, 39, 40" in html and "rgba(44, 160, 44" in html
    shares_html = gallery.styled_confusion(sample.evaluation.confusion, normalized=True).to_html()
    assert ">75.0<" in shares_html and ">100<" in shares_html and ">0<" in shares_html
    table = gallery.per_class_table(sample)
    assert table.loc["7", "support"] == 4 and table.loc["7", "recall"] == pytest.approx(0.25)


def test_selection_payloads():
    assert selection.cell_from_selection([(7, "2")]) == (7, 2)
    assert selection.cell_from_selection([]) is None
    assert selection.cell_from_selection([(3, "digit")]) is None
    assert selection.cell_from_selection([(12, "2")]) is None
    points = [{"customdata": [5, 2]}, {"customdata": [1, 1]}, {"customdata": [5, 2, 7]}, {"x": 0.1}, {"customdata": 9}]
    assert selection.indices_from_points(points) == (1, 5, 9)
    assert selection.indices_from_points([]) == ()


def test_map_points_keeps_every_error():
    labels = np.arange(100) % 10
    predictions = labels.copy()
    predictions[[3, 51, 97]] = 0
    big = _analysis(labels, predictions, np.full(100, 0.9))
    assert gallery.map_points(big, limit=200).tolist() == list(range(100))
    shown = gallery.map_points(big, limit=20)
    assert len(shown) == 20 and {3, 51, 97} <= set(shown.tolist()) and len(set(shown.tolist())) == 20
    assert np.array_equal(shown, gallery.map_points(big, limit=20))  # a fixed sample


def test_neighbours_by_class_and_never_itself():
    features = [[0, 0, 0, 0], [1, 0, 0, 0], [0.1, 0, 0, 0], [5, 5, 5, 5], [0.2, 0, 0, 0]]
    train = _analysis([3, 3, 3, 4, 4], [3, 3, 3, 4, 4], [0.9] * 5, features=features, split="train")
    assert gallery.neighbours(train, 0, train, digit=3, k=5).tolist() == [2, 1]
    assert gallery.neighbours(train, 0, train, digit=4, k=5).tolist() == [4, 3]
    test = _analysis([3], [3], [0.9], features=[[0, 0, 0, 0]])
    assert gallery.neighbours(test, 0, train, digit=3, k=2).tolist() == [0, 2]


def test_enlarge_and_overlay():
    pixels = np.zeros((28, 28), np.uint8)
    pixels[10:18, 12:16] = 255
    assert gallery.enlarge(pixels, 3).shape == (84, 84)
    assert gallery.enlarge(pixels, 3)[30, 36] == 255
    attribution = np.zeros((28, 28), np.float32)
    attribution[12, 13], attribution[16, 14] = 1.0, -0.5
    image = saliency_overlay(pixels, attribution, scale=2)
    assert image.shape == (56, 56, 3) and image.dtype == np.uint8
    red, blue, plain = image[24, 26], image[32, 28], image[22, 24]
    assert red[0] > 200 and red[2] < 60
    assert blue[2] > red[2] and blue[0] < red[0]
    assert plain[0] == plain[1] == plain[2]  # no attribution: the grey digit
    assert np.array_equal(saliency_overlay(pixels, np.zeros((28, 28)), scale=1)[..., 0], (pixels / 255 * 0.6 * 255).round())


def test_probability_figure():
    probabilities = np.full(10, 0.01)
    probabilities[3], probabilities[5] = 0.81, 0.1
    figure = charts.class_probability_figure(probabilities, true_label=5)
    bar = figure.data[0]
    assert list(bar.x) == [str(d) for d in range(10)] and bar.y[3] == pytest.approx(0.81)
    assert bar.marker.color[3] == charts.TEST_COLOR and bar.marker.color[5] == charts.TRAIN_COLOR
    assert bar.marker.line.width[5] > 0 and bar.marker.line.width[3] == 0
    with pytest.raises(ValueError):
        charts.class_probability_figure([0.5, 0.5])


def test_embedding_figure_carries_indices(sample):
    points = np.arange(14, dtype=np.float32).reshape(7, 2)
    figure = charts.embedding_figure(points, sample.labels, sample.predictions, np.array([0, 1, 3, 6]))
    by_name = {trace.name: trace for trace in figure.data}
    assert [row[0] for row in by_name["7"].customdata] == [0, 1]
    assert list(by_name["7"].x) == [0, 2]
    assert [row[0] for row in by_name["misclassified"].customdata] == [0]
    assert len(by_name["5"].x) == 0
    assert figure.layout.dragmode == "lasso"
