"""Server-side SVG charts: the geometry here, the markup in templates/charts.html."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schemas.i18n import gettext, number

PALETTE = ("#2f6db5", "#d9822b", "#4c9a52", "#b8433a", "#7a5aa6", "#8c6d46", "#c75fa0",
           "#6b7c8f")

# (label, [(series, value), ...]): one horizontal bar stacked by series.
Bar = tuple[str, Sequence[tuple[str, float]]]


@dataclass(frozen=True)
class Key:
    x: float
    y: float
    fill: str
    text: str


@dataclass(frozen=True)
class Mark:
    """One data value: its place, and what it is for a reader and for a test (data-*)."""
    x: float
    y: float
    width: float
    height: float
    fill: str
    label: str
    series: str
    value: float
    title: str


@dataclass(frozen=True)
class BarRow:
    y: float
    label: str
    short: str
    marks: list[Mark]
    total_x: float
    total: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Line:
    fill: str
    points: str
    marks: list[Mark]


@dataclass
class Chart:
    kind: str
    chart_id: str
    title: str
    width: float
    height: float
    left: float
    top: float
    rows: list[BarRow] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    grid: tuple[float, float, float, float] | None = None
    legend: list[Key] = field(default_factory=list)
    empty: str = ""


def _short(value: str, width: int = 28) -> str:
    return value if len(value) <= width else value[:width - 1] + "…"


def _legend(colour: Mapping[str, str], names: Mapping[str, str], x: float, y: float) -> list[Key]:
    keys = []
    for series, fill in colour.items():
        text = names.get(series, series)
        keys.append(Key(x, y, fill, text))
        # Wide (CJK) characters take about twice the width of Latin ones.
        x += 24 + sum(13 if ord(ch) > 0x2E80 else 7 for ch in text)
    return keys


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar],
              colours: Mapping[str, str] | None = None, unit: str = "",
              names: Mapping[str, str] | None = None) -> Chart:
    """Horizontal bars, each stacked by series; a mark per non-zero value.

    `names` are the series as a reader sees them; marks keep the series' codes in data-series.
    """
    names = names or {}
    # Series keep the order of `colours` (a legend reads level 1 before level 2), then appear.
    present = dict.fromkeys(name for _, parts in bars for name, _ in parts)
    series = [n for n in dict.fromkeys([*(colours or {}), *present]) if n in present]
    colour = {name: (colours or {}).get(name, PALETTE[i % len(PALETTE)])
              for i, name in enumerate(series)}
    left, plot, row, top = 210, 420, 24, 28
    height = top + max(1, len(bars)) * row + 34
    largest = max((sum(v for _, v in parts) for _, parts in bars), default=0) or 1
    chart = Chart("bar", chart_id, title, left + plot + 90, height, left, top,
                  empty=gettext("nothing to show") if not bars else "")
    for index, (text, parts) in enumerate(bars):
        y = top + index * row
        x = float(left)
        marks = []
        for name, value in parts:
            if value <= 0:
                continue
            width = max(1.0, value / largest * plot)
            shown = names.get(name, name)
            marks.append(Mark(x, y + 3, width, row - 7, colour[name], text, name, value,
                              f"{text} · {shown}: {number(value)}{unit}"))
            x += width
        total = sum(v for _, v in parts)
        chart.rows.append(BarRow(y, text, _short(text), marks, x + 5, f"{number(total)}{unit}"))
    if len(series) > 1:
        chart.legend = _legend(colour, names, left, height - 12)
    return chart


def line_chart(chart_id: str, title: str, days: Sequence[str],
               series: Mapping[str, Sequence[float]], unit: str = "",
               names: Mapping[str, str] | None = None) -> Chart:
    """One line per series over the days, a mark per day and series."""
    names = names or {}
    left, plot_w, plot_h, top = 90, 600, 170, 36
    chart = Chart("line", chart_id, title, left + plot_w + 30, top + plot_h + 64, left, top)
    largest = max((v for values in series.values() for v in values), default=0) or 1
    step = plot_w / max(1, len(days) - 1)

    def at(i: int, v: float) -> tuple[float, float]:
        return left + i * step, top + plot_h - v / largest * plot_h

    chart.grid = (left, top + plot_h, left + plot_w, top + plot_h)
    chart.ticks = [Tick(left - 6, top + 4, number(largest), "end"),
                   Tick(left - 6, top + plot_h, "0", "end")]
    for i, day in enumerate(days):
        if i % max(1, len(days) // 7) == 0 or i == len(days) - 1:
            chart.ticks.append(Tick(at(i, 0)[0], top + plot_h + 16, day[5:]))
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    for name, values in series.items():
        placed = [at(i, v) for i, v in enumerate(values)]
        shown = names.get(name, name)
        marks = [Mark(x, y, 0, 0, colour[name], days[i], name, values[i],
                      f"{days[i]} · {shown}: {number(values[i])}{unit}")
                 for i, (x, y) in enumerate(placed)]
        chart.lines.append(Line(colour[name], " ".join(f"{x:.1f},{y:.1f}" for x, y in placed),
                                marks))
    chart.legend = _legend(colour, names, left, chart.height - 10)
    return chart
