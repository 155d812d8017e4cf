"""A still picture of a Plotly figure, drawn with Pillow: what Explore shows until the browser has Plotly's code.

A browser compiles and runs Plotly's 4.7 MB of JavaScript before it draws its first chart, about 0.7 s on 2
cores, and its first WebGL scatter costs another 0.3 s; a shared link's page drew in 2.8 s with them and in 1.6 s
without (docs/dynamics.md). So a session's first drawing of Explore shows these stills, and the interactive charts
replace them once the browser is idle (ui/charts.py).

A still draws what Explore's figures use, in the look Streamlit gives Plotly charts: the markers and lines of scatter
traces (WebGL ones too), bars (grouped, coloured and outlined bar by bar, their text above them), linear and
category axes with their range, ticks and tick format, the title, the axis titles and the legend. Anything else in a
figure (shapes, annotations, hover) waits for the interactive chart.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageColor, ImageDraw, ImageFont

SCALE = 2  # pixels per CSS pixel: sharp on high-density screens
BACKGROUND, TEXT, MUTED, GRID = "#ffffff", "#31333f", "#808495", "#e6eaf1"  # Streamlit's light theme for Plotly
COLORWAY = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880", "#ff97ff", "#fecb52")
TITLE_SIZE, LABEL_SIZE, TICK_SIZE = 14, 13, 11  # CSS pixels
TICK_SPACING = {"x": 80, "y": 45}  # CSS pixels between ticks, about as Plotly spaces them
PAD = 6  # CSS pixels between a tick label, an axis title and the edge
SWATCH = 14  # a legend entry's marker
DEFAULT_MARGIN = dict(l=80, r=80, t=100, b=80)  # Plotly's own defaults


def png(figure: go.Figure, width: int) -> bytes:
    """The figure as a PNG `width` CSS pixels wide and as high as its layout says (SCALE pixels per CSS pixel)."""
    buffer = io.BytesIO()
    draw(figure, width).save(buffer, format="PNG")
    return buffer.getvalue()


def draw(figure: go.Figure, width: int) -> Image.Image:
    """The figure as an RGB image of `width` x layout height CSS pixels, SCALE pixels each."""
    layout = figure.layout
    height = int(layout.height or 450)
    canvas = _Canvas(width, height)
    traces = [trace for trace in figure.data if trace.visible is not False and trace.type in ("scatter", "scattergl", "bar")]
    x_axis = _axis(layout.xaxis, traces, "x")
    y_axis = _axis(layout.yaxis, traces, "y")
    legend = _legend_entries(figure, traces)
    area = _plot_area(canvas, layout, x_axis, y_axis, legend)
    x_axis.place(area.left, area.right, layout.xaxis, "x")
    y_axis.place(area.bottom, area.top, layout.yaxis, "y")
    canvas.grid_and_ticks(area, x_axis, y_axis)
    for index, trace in enumerate(traces):
        if trace.type == "bar":
            canvas.bars(trace, index, [t for t in traces if t.type == "bar"], x_axis, y_axis, area, layout.barmode)
        else:
            canvas.scatter(trace, index, x_axis, y_axis, area)
    canvas.titles(layout, area, x_axis, y_axis)
    canvas.legend(layout, area, legend)
    return canvas.image.convert("RGB")


def _rgba(color: str | None, opacity: float = 1.0, fallback: str = TEXT) -> tuple[int, int, int, int]:
    try:
        red, green, blue = ImageColor.getrgb(color or fallback)[:3]
    except ValueError:
        red, green, blue = ImageColor.getrgb(fallback)[:3]
    return red, green, blue, round(255 * max(0.0, min(1.0, opacity)))


def _values(values) -> np.ndarray:
    return np.asarray([] if values is None else values)


def _each(value, n: int) -> list:
    """A per-bar or per-point property as n values (Plotly takes a scalar or an array for most of them)."""
    if value is None or isinstance(value, str) or np.ndim(value) == 0:
        return [value] * n
    return list(value)[:n] + [None] * max(0, n - len(value))


@dataclass
class _Axis:
    """One axis: its data range, where it lies on the canvas (pixels), its ticks and their labels."""

    low: float
    high: float
    categories: list[str] | None
    ticks: list[tuple[float, str]]
    title: str
    start: float = 0.0
    end: float = 1.0

    def place(self, start: float, end: float, settings, letter: str) -> None:
        """Lay the axis from `start` to `end` (pixels); a numeric axis gets as many ticks as that length holds."""
        self.start, self.end = start, end
        if self.categories is None:
            self.ticks = _ticks(settings, self.low, self.high, max(2, abs(end - start) / TICK_SPACING[letter]))

    def at(self, value) -> np.ndarray:
        """Canvas pixels of data values (category names on a category axis)."""
        value = np.atleast_1d(value)
        if self.categories is not None:
            value = np.asarray([self.categories.index(str(v)) for v in value], dtype=float)
        span = (self.high - self.low) or 1.0
        return self.start + (value.astype(float) - self.low) / span * (self.end - self.start)


def _axis(settings, traces: list, letter: str) -> _Axis:
    title = (settings.title.text or "") if settings.title else ""
    data = [_values(getattr(trace, letter)) for trace in traces]
    if settings.type == "category" or any(array.dtype.kind in "OUS" for array in data if array.size):
        categories = list(dict.fromkeys(str(v) for array in data for v in array))
        shown = [str(v) for v in settings.tickvals] if settings.tickvals is not None else categories
        return _Axis(-0.5, len(categories) - 0.5, categories, [(categories.index(c), c) for c in shown if c in categories], title)
    numbers = np.concatenate([array.astype(float).ravel() for array in data if array.size] or [np.zeros(1)])
    numbers = numbers[np.isfinite(numbers)]
    if settings.range is not None:
        low, high = (float(v) for v in settings.range)
    else:
        low, high = (float(numbers.min()), float(numbers.max())) if numbers.size else (0.0, 1.0)
        if any(trace.type == "bar" for trace in traces):
            low, high = min(low, 0.0), max(high, 0.0) * 1.05
        else:  # markers need room at the edges, as Plotly's autorange gives them
            pad = (high - low) * 0.06 or 0.5
            low, high = low - pad, high + pad
    return _Axis(low, high, None, _ticks(settings, low, high, 5), title)  # ticks again once placed


def _ticks(settings, low: float, high: float, count: float) -> list[tuple[float, str]]:
    if settings.tickmode == "linear" and settings.dtick is not None:
        step = float(settings.dtick)
        first = float(settings.tick0 or 0.0) + math.ceil((low - float(settings.tick0 or 0.0)) / step) * step
    else:
        raw = (high - low) / count
        magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
        first = math.ceil(low / step) * step
    values = [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
    return [(value, _tick_label(value, step, settings.tickformat)) for value in values]


def _tick_label(value: float, step: float, tickformat: str | None) -> str:
    if tickformat and tickformat.endswith("%"):
        return f"{value:{tickformat}}"
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{round(value, decimals):.{decimals}f}"


@dataclass(frozen=True)
class _Entry:
    name: str
    color: tuple[int, int, int, int]
    hollow: bool
    line: bool


def _legend_entries(figure: go.Figure, traces: list) -> list[_Entry]:
    if figure.layout.showlegend is False:
        return []
    shown = [trace for trace in traces if trace.showlegend is not False and trace.name]
    if len(shown) < 2 and figure.layout.showlegend is not True:
        return []  # as Plotly: one trace gets no legend
    entries = []
    for index, trace in enumerate(shown):
        color = trace.marker.color if trace.marker and isinstance(trace.marker.color, str) else None
        if trace.type != "bar" and "lines" in (trace.mode or "") and trace.line and trace.line.color:
            color = trace.line.color
        symbol = getattr(trace.marker, "symbol", None)  # bars have none
        hollow = isinstance(symbol, str) and symbol.endswith("-open")
        line = trace.type != "bar" and "markers" not in (trace.mode or "markers")
        entries.append(_Entry(trace.name, _rgba(color, fallback=COLORWAY[index % len(COLORWAY)]), hollow, line))
    return entries


@dataclass(frozen=True)
class _Area:
    left: float
    top: float
    right: float
    bottom: float


class _Canvas:
    """The image and its fonts; sizes in CSS pixels, drawn SCALE times larger."""

    def __init__(self, width: int, height: int):
        self.image = Image.new("RGBA", (width * SCALE, height * SCALE), BACKGROUND)
        self.pen = ImageDraw.Draw(self.image)
        self.fonts = {size: ImageFont.load_default(size=size * SCALE) for size in (TITLE_SIZE, LABEL_SIZE, TICK_SIZE)}

    def size(self, text: str, font: int) -> tuple[float, float]:
        left, top, right, bottom = self.pen.textbbox((0, 0), text, font=self.fonts[font])
        return (right - left) / SCALE, (bottom - top) / SCALE

    def text(self, xy: tuple[float, float], text: str, font: int, color: str = TEXT, anchor: str = "la") -> None:
        self.pen.text((xy[0] * SCALE, xy[1] * SCALE), text, font=self.fonts[font], fill=color, anchor=anchor)

    def grid_and_ticks(self, area: _Area, x_axis: _Axis, y_axis: _Axis) -> None:
        for value, label in y_axis.ticks:
            y = float(y_axis.at(value)[0])
            self.pen.line([(area.left * SCALE, y * SCALE), (area.right * SCALE, y * SCALE)], fill=GRID, width=SCALE)
            self.text((area.left - PAD, y), label, TICK_SIZE, MUTED, anchor="rm")
        for value, label in x_axis.ticks:
            x = float(x_axis.at(value)[0])
            if x_axis.categories is None:
                self.pen.line([(x * SCALE, area.top * SCALE), (x * SCALE, area.bottom * SCALE)], fill=GRID, width=SCALE)
            self.text((x, area.bottom + PAD), label, TICK_SIZE, MUTED, anchor="ma")

    def scatter(self, trace, index: int, x_axis: _Axis, y_axis: _Axis, area: _Area) -> None:
        xs, ys = x_axis.at(_values(trace.x)), y_axis.at(_values(trace.y))
        inside = np.isfinite(xs) & np.isfinite(ys)
        # The trace is drawn on a layer the size of the plot area, which clips it as Plotly does: a point on the edge
        # is cut, not drawn over the axis labels.
        origin = (round(area.left * SCALE), round(area.top * SCALE))
        xs, ys = xs[inside] * SCALE - origin[0], ys[inside] * SCALE - origin[1]
        mode = trace.mode or "markers"
        opacity = 1.0 if trace.opacity is None else float(trace.opacity)
        size = (round(area.right * SCALE) - origin[0], round(area.bottom * SCALE) - origin[1])
        layer = Image.new("RGBA", size, (0, 0, 0, 0))
        pen = ImageDraw.Draw(layer)
        fallback = COLORWAY[index % len(COLORWAY)]
        if "lines" in mode and len(xs) > 1:
            width = float(trace.line.width) if trace.line and trace.line.width is not None else 2.0
            color = _rgba(trace.line.color if trace.line else None, 1.0, fallback)
            pen.line(list(zip(xs, ys, strict=True)), fill=color, width=max(1, round(width * SCALE)), joint="curve")
        if "markers" in mode:
            marker = trace.marker
            size = float(marker.size) if marker.size is not None and np.ndim(marker.size) == 0 else 6.0
            symbol = marker.symbol if isinstance(marker.symbol, str) else "circle"
            color = _rgba(marker.color if isinstance(marker.color, str) else None, 1.0, fallback)
            if "lines" in mode and not isinstance(marker.color, str) and trace.line and trace.line.color:
                color = _rgba(trace.line.color)
            radius = size / 2 * SCALE
            outline = float(marker.line.width) if marker.line and marker.line.width is not None else 1.0
            for x, y in zip(xs, ys, strict=True):
                box = (x - radius, y - radius, x + radius, y + radius)
                if symbol.endswith("-open"):
                    pen.ellipse(box, outline=color, width=max(1, round(outline * SCALE)))
                else:
                    pen.ellipse(box, fill=color)
            opacity *= 1.0 if marker.opacity is None or np.ndim(marker.opacity) else float(marker.opacity)
        if opacity < 1.0:
            layer.putalpha(layer.getchannel("A").point(lambda alpha: round(alpha * opacity)))
        self.image.alpha_composite(layer, origin)

    def bars(self, trace, index: int, bar_traces: list, x_axis: _Axis, y_axis: _Axis, area: _Area, barmode: str | None) -> None:
        xs, ys = _values(trace.x), _values(trace.y).astype(float)
        group = len(bar_traces) if barmode == "group" else 1
        slot = bar_traces.index(trace) if barmode == "group" else 0
        step = abs(float(x_axis.at(1)[0] - x_axis.at(0)[0])) if x_axis.categories else 20.0
        width = step * 0.8 / group
        colors = _each(trace.marker.color, len(xs))
        outlines = _each(trace.marker.line.width if trace.marker.line else None, len(xs))
        outline_colors = _each(trace.marker.line.color if trace.marker.line else None, len(xs))
        texts = _each(trace.text, len(xs))

        def clipped(value: float) -> float:  # a bar whose base or top lies outside the axis range is cut at the plot's edge
            return min(max(float(y_axis.at(value)[0]), area.top), area.bottom)

        base = clipped(0.0)
        for x, y, color, outline, outline_color, label in zip(xs, ys, colors, outlines, outline_colors, texts, strict=True):
            centre = float(x_axis.at(x)[0]) - step * 0.4 + width * (slot + 0.5)
            top = clipped(y)
            box = [(centre - width / 2) * SCALE, min(top, base) * SCALE, (centre + width / 2) * SCALE, max(top, base) * SCALE]
            line = round(float(outline or 0) * SCALE)
            self.pen.rectangle(
                box, fill=_rgba(color, 1.0, COLORWAY[index % len(COLORWAY)]), outline=outline_color if line else None, width=line
            )
            if label:
                self.text((centre, min(top, base) - 2), str(label), TICK_SIZE, TEXT, anchor="md")

    def titles(self, layout, area: _Area, x_axis: _Axis, y_axis: _Axis) -> None:
        title = layout.title.text if layout.title else None
        if title:  # where Plotly puts it: at the figure's left, in the top margin
            self.text((PAD + 4, PAD + 4), title, TITLE_SIZE, TEXT)
        if x_axis.title:
            self.text(((area.left + area.right) / 2, area.bottom + PAD + TICK_SIZE + PAD), x_axis.title, LABEL_SIZE, MUTED, "ma")
        if y_axis.title:
            font = self.fonts[LABEL_SIZE]
            ascent, descent = font.getmetrics()
            label = Image.new("RGBA", (round(font.getlength(y_axis.title)) + 4, ascent + descent), (0, 0, 0, 0))
            ImageDraw.Draw(label).text((2, 0), y_axis.title, font=font, fill=MUTED)
            label = label.rotate(90, expand=True)
            x = round(PAD * SCALE)
            y = round(((area.top + area.bottom) / 2) * SCALE - label.height / 2)
            self.image.alpha_composite(label, (x, max(0, y)))

    def legend(self, layout, area: _Area, entries: list[_Entry]) -> None:
        if not entries:
            return
        settings = layout.legend
        title = settings.title.text if settings and settings.title else None
        vertical = settings is not None and settings.orientation == "v"
        if vertical:
            x, y = area.right + 2 * PAD, area.top
            if title:
                self.text((x, y), title, LABEL_SIZE)
                y += LABEL_SIZE + PAD
            for entry in entries:
                self._entry(x, y, entry)
                y += TICK_SIZE + PAD + 2
            return
        widths = [SWATCH + 4 + self.size(entry.name, TICK_SIZE)[0] + 2 * PAD for entry in entries]
        below = settings is not None and settings.y is not None and settings.y < 0
        if below:
            x, y = area.left, area.bottom + PAD + TICK_SIZE + PAD + LABEL_SIZE + 2 * PAD
        else:
            x, y = area.right - sum(widths), area.top - TICK_SIZE - 2 * PAD
        for entry, width in zip(entries, widths, strict=True):
            self._entry(x, y, entry)
            x += width

    def _entry(self, x: float, y: float, entry: _Entry) -> None:
        middle = y + TICK_SIZE / 2
        if entry.line:
            self.pen.line(
                [(x * SCALE, middle * SCALE), ((x + SWATCH) * SCALE, middle * SCALE)], fill=entry.color, width=2 * SCALE
            )
        else:
            box = [(x + 2) * SCALE, (middle - 5) * SCALE, (x + 12) * SCALE, (middle + 5) * SCALE]
            if entry.hollow:
                self.pen.ellipse(box, outline=entry.color, width=SCALE + 1)
            else:
                self.pen.ellipse(box, fill=entry.color)
        self.text((x + SWATCH + 4, middle), entry.name, TICK_SIZE, TEXT, anchor="lm")


def _plot_area(canvas: _Canvas, layout, x_axis: _Axis, y_axis: _Axis, legend: list[_Entry]) -> _Area:
    """Where the axes meet: inside the layout's margins, with room for tick labels, axis titles and a side legend."""
    margin = {side: getattr(layout.margin, side) if layout.margin and getattr(layout.margin, side) is not None else value
              for side, value in DEFAULT_MARGIN.items()}  # fmt: skip
    tick_width = max((canvas.size(label, TICK_SIZE)[0] for _, label in y_axis.ticks), default=0.0)
    left = margin["l"] + (LABEL_SIZE + 2 * PAD if y_axis.title else 0) + tick_width + PAD
    bottom_room = TICK_SIZE + 2 * PAD + (LABEL_SIZE + PAD if x_axis.title else 0)
    settings = layout.legend
    vertical = bool(legend) and settings is not None and settings.orientation == "v"
    below = bool(legend) and not vertical and settings is not None and settings.y is not None and settings.y < 0
    right_room = max((SWATCH + 4 + canvas.size(e.name, TICK_SIZE)[0] for e in legend), default=0.0) + 3 * PAD if vertical else 0.0
    if vertical and settings.title and settings.title.text:
        right_room = max(right_room, canvas.size(settings.title.text, LABEL_SIZE)[0] + 3 * PAD)
    width, height = canvas.image.width / SCALE, canvas.image.height / SCALE
    bottom = height - margin["b"] - bottom_room - (TICK_SIZE + 2 * PAD if below else 0)
    return _Area(left, margin["t"], width - margin["r"] - right_room, bottom)
