"""Streamlit and Plotly selection events turned into what the explorer filters by."""

from __future__ import annotations

from collections.abc import Sequence

from mnist_core.evaluate import NUM_CLASSES


def cell_from_selection(cells: Sequence) -> tuple[int, int] | None:
    """The (true, predicted) pair of a single-cell table selection [(row, column name)], or None."""
    if not cells:
        return None
    row, column = cells[0]
    try:
        true, predicted = int(row), int(column)
    except (TypeError, ValueError):
        return None
    if not (0 <= true < NUM_CLASSES and 0 <= predicted < NUM_CLASSES):
        return None
    return true, predicted


def indices_from_points(points: Sequence) -> tuple[int, ...]:
    """Sample indices (sorted, unique) from a Plotly selection's points, read from their customdata."""
    found = set()
    for point in points or ():
        value = point.get("customdata") if isinstance(point, dict) else getattr(point, "customdata", None)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            found.add(int(value))
    return tuple(sorted(found))
