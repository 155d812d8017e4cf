"""The training-dynamics figures, checked as data: traces, values and what a selection reads."""

from __future__ import annotations

import numpy as np

from mnist_core import charts


def test_sample_story_draws_the_given_and_the_final_class_over_epochs():
    figure = charts.sample_story_figure([1, 2, 3], [0.1, 0.3, 0.2], [0.8, 0.6, 0.7], given_label=4, final_label=9)
    assert [trace.name for trace in figure.data] == ["p(given 4)", "p(final prediction 9)"]
    assert list(figure.data[0].y) == [0.1, 0.3, 0.2] and list(figure.data[1].y) == [0.8, 0.6, 0.7]
    assert list(figure.data[0].x) == [1, 2, 3]
    # A sample that ends right has one curve: its given label is its prediction.
    assert len(charts.sample_story_figure([1, 2], [0.5, 0.9], [0.5, 0.9], given_label=3, final_label=3).data) == 1


def test_cartography_splits_right_and_wrong_and_carries_sample_indices():
    confidence = np.array([0.9, 0.2, 0.5, 0.7])
    variability = np.array([0.01, 0.1, 0.3, 0.05])
    correct = np.array([True, False, False, True])
    figure = charts.cartography_figure(confidence, variability, correct, np.array([0, 1, 2, 3]))
    right, wrong = figure.data
    assert right.name == "right at the end" and wrong.name == "wrong at the end"
    assert right.customdata[:, 0].tolist() == [0, 3] and wrong.customdata[:, 0].tolist() == [1, 2]
    assert list(wrong.y) == [0.2, 0.5] and list(wrong.x) == [0.1, 0.3]
    assert figure.layout.dragmode == "lasso"
