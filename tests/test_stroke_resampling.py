"""Strokes resampled evenly along their path (the load benchmark's human pace): a paced stroke draws the same digit."""

from __future__ import annotations

import math

import pytest

from mnist_core.testing.drawing import resample


def test_resample_spaces_points_evenly_along_the_path_and_keeps_its_ends():
    points = resample([(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)], 5)
    assert [c for point in points for c in point] == pytest.approx([0, 0, 5, 0, 10, 0, 10, 5, 10, 10])
    steps = [math.dist(a, b) for a, b in zip(points, points[1:])]
    assert steps == pytest.approx([5.0] * 4)


def test_resample_of_a_long_stroke_follows_every_corner():
    zigzag = [(0.0, 0.0), (1.0, 1.0), (2.0, 0.0), (3.0, 1.0)]
    points = resample(zigzag, 7)
    assert points[0] == zigzag[0] and math.dist(points[-1], zigzag[-1]) == pytest.approx(0.0, abs=1e-9)
    for corner in zigzag[1:-1]:
        assert min(math.dist(corner, p) for p in points) == pytest.approx(0.0, abs=1e-9)


def test_resample_leaves_a_single_point_alone():
    assert resample([(3.0, 4.0)], 10) == [(3.0, 4.0)]
