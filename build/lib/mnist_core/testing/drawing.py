"""Hand-drawn-looking digits for tests: pen strokes in a unit box, rendered with PIL at any size and style.

Each digit is a list of strokes; each stroke a polyline of (x, y) points in [0, 1]
(x to the right, y down), the way a person would draw it with a mouse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

Stroke = list[tuple[float, float]]


def _ellipse(cx: float, cy: float, rx: float, ry: float, start: float = 0.0, end: float = 360.0, n: int = 40) -> Stroke:
    angles = np.radians(np.linspace(start, end, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


DIGIT_STROKES: dict[int, list[Stroke]] = {
    0: [_ellipse(0.5, 0.5, 0.32, 0.48)],
    1: [[(0.45, 0.12), (0.58, 0.0), (0.55, 1.0)]],
    2: [_ellipse(0.5, 0.28, 0.33, 0.27, 190, 350, 16) + [(0.1, 1.0), (0.95, 1.0)]],
    3: [_ellipse(0.48, 0.25, 0.33, 0.25, 210, 450, 20) + _ellipse(0.48, 0.74, 0.37, 0.26, 270, 510, 20)],
    4: [[(0.3, 0.0), (0.08, 0.62), (0.92, 0.62)], [(0.7, 0.2), (0.66, 1.0)]],
    5: [[(0.85, 0.0), (0.25, 0.0), (0.2, 0.42)] + _ellipse(0.5, 0.68, 0.36, 0.31, 230, 500, 22)],
    6: [[(0.75, 0.0), (0.45, 0.18), (0.22, 0.45)] + _ellipse(0.5, 0.7, 0.32, 0.29, 180, 540, 30)],
    7: [[(0.05, 0.0), (0.95, 0.0), (0.42, 1.0)]],
    8: [_ellipse(0.5, 0.25, 0.27, 0.24, 90, 450, 30) + _ellipse(0.5, 0.73, 0.33, 0.26, -90, 270, 30)],
    9: [_ellipse(0.5, 0.28, 0.32, 0.27, 0, 360, 30) + [(0.82, 0.3), (0.72, 1.0)]],
}


def draw_digit(
    digit: int,
    size: tuple[int, int] = (280, 280),
    box: tuple[float, float, float, float] = (60, 40, 220, 240),
    width: int = 18,
    background: int | tuple[int, ...] = 0,
    ink: int | tuple[int, ...] = 255,
    mode: str = "L",
) -> Image.Image:
    """`digit` drawn with round pen strokes of `width` px inside `box` (left, top, right, bottom)."""
    image = Image.new(mode, size, background)
    pen = ImageDraw.Draw(image)
    left, top, right, bottom = box
    for stroke in DIGIT_STROKES[digit]:
        points = [(left + x * (right - left), top + y * (bottom - top)) for x, y in stroke]
        pen.line(points, fill=ink, width=width, joint="curve")
        radius = width / 2
        for x, y in (points[0], points[-1]):  # round pen ends, as a real brush leaves
            pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=ink)
    return image


def canvas_rgba(digit: int, **kwargs) -> np.ndarray:
    """What the Draw page's canvas returns: (H, W, 4) uint8, opaque black background, white ink."""
    return np.asarray(draw_digit(digit, mode="RGBA", background=(0, 0, 0, 255), ink=(255, 255, 255, 255), **kwargs))


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    """(row, column) centre of mass of a greyscale image."""
    rows, cols = np.indices(pixels.shape)
    mass = pixels.sum()
    return float((rows * pixels).sum() / mass), float((cols * pixels).sum() / mass)


def ink_extent(pixels: np.ndarray, threshold: float = 0.0) -> tuple[int, int]:
    """(height, width) of the box holding every pixel above `threshold`."""
    rows = np.flatnonzero((pixels > threshold).any(axis=1))
    cols = np.flatnonzero((pixels > threshold).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def stroke_path(digit: int, box: Sequence[float]) -> list[list[tuple[float, float]]]:
    """The digit's strokes as absolute points inside `box` (left, top, right, bottom), e.g. for mouse moves."""
    left, top, right, bottom = box
    return [[(left + x * (right - left), top + y * (bottom - top)) for x, y in stroke] for stroke in DIGIT_STROKES[digit]]


def resample(points: list[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    """`count` points evenly spaced along the polyline through `points` (its ends included)."""
    if len(points) < 2 or count < 2:
        return list(points)
    lengths = [math.dist(a, b) for a, b in zip(points, points[1:])]
    total = sum(lengths) or 1.0
    result, segment, walked = [], 0, 0.0
    for i in range(count):
        target = total * i / (count - 1)
        while segment < len(lengths) - 1 and walked + lengths[segment] < target:
            walked += lengths[segment]
            segment += 1
        (x0, y0), (x1, y1) = points[segment], points[segment + 1]
        t = min(1.0, (target - walked) / lengths[segment]) if lengths[segment] else 0.0
        result.append((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    return result
