"""Chart geometry for the dashboard: numbers in, rectangles and labels out; no library.

The templates (templates/console/charts.html) draw these as inline SVG, so a
chart needs no script, no CDN and passes the console's Content-Security-Policy
(presentation attributes, no inline styles). Colours are the Okabe-Ito
palette, which stays distinguishable with the common colour-vision deficiencies
(Okabe & Ito, "Color Universal Design", 2008).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000", "#999999")
WIDTH = 720
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 28
BAR_SHARE = 0.7  # of each day's slot; the rest is the gap between days
MAX_DAY_LABELS = 10
ROW = 26  # px per horizontal bar
LABEL_WIDTH = 280  # fits the longest intent label at 12px


@dataclass(frozen=True)
class Bar:
    """One rectangle, with what it stands for (for its tooltip and the tests)."""

    x: float
    y: float
    width: float
    height: float
    fill: str
    key: str
    value: int
    label: str  # what the key is, in words
    day: str = ""  # ISO day, for a day chart

    @property
    def title(self) -> str:
        """The tooltip: day, what, how many."""
        return f"{self.day} {self.label}: {self.value}".strip()


@dataclass(frozen=True)
class Label:
    """One piece of text on a chart."""

    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    """Everything a template needs to draw one chart."""

    title: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    gridlines: list[float] = field(default_factory=list)
    legend: list[tuple[str, str, str]] = field(default_factory=list)  # key, label, colour


def nice_step(largest: float, steps: int = 4) -> float:
    """A round gridline step (1, 2 or 5 times a power of ten) for values up to `largest`."""
    raw = max(largest, 1) / steps
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def colours(keys: Sequence[str], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    """A colour per key: the fixed ones first, then the palette in order."""
    spare = iter(c for c in PALETTE if c not in (fixed or {}).values())
    return {k: (fixed or {}).get(k) or next(spare, PALETTE[-1]) for k in keys}


def day_bars(title: str, counts: Mapping[str, Mapping[date, int]], days: Sequence[date],
             labels: Mapping[str, str], fixed: Mapping[str, str] | None = None,
             height: int = 220) -> Chart:
    """Stacked bars, one per day, one segment per key (in `labels` order)."""
    keys = [k for k in labels if any(counts.get(k, {}).values())]
    fill = colours(keys, fixed)
    totals = [sum(counts.get(k, {}).get(d, 0) for k in keys) for d in days]
    step = nice_step(max(totals, default=0))
    top = step * max(1, math.ceil(max(totals, default=0) / step))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    chart = Chart(title, WIDTH, height, legend=[(k, labels[k], fill[k]) for k in keys])
    for i in range(int(top / step) + 1):
        y = TOP + plot_h - i * step / top * plot_h
        chart.gridlines.append(y)
        chart.labels.append(Label(LEFT - 6, y + 4, f"{i * step:g}", "end"))
    every = math.ceil(len(days) / MAX_DAY_LABELS)
    for i, day in enumerate(days):
        x, base = LEFT + i * slot + slot * (1 - BAR_SHARE) / 2, float(TOP + plot_h)
        for key in keys:
            n = counts.get(key, {}).get(day, 0)
            if n:
                h = n / top * plot_h
                base -= h
                chart.bars.append(Bar(x, base, slot * BAR_SHARE, h, fill[key], key, n,
                                      labels[key], day.isoformat()))
        if i % every == 0:
            chart.labels.append(Label(x + slot * BAR_SHARE / 2, height - 8,
                                      day.strftime("%b %d")))
    return chart


def row_bars(title: str, values: Sequence[tuple[str, str, int]],
             fixed: Mapping[str, str] | None = None, colour: str = PALETTE[0]) -> Chart:
    """Horizontal bars, one per (key, label, value), longest scale first to last."""
    height = TOP + ROW * max(1, len(values)) + 4
    largest = max((v for _, _, v in values), default=0) or 1
    plot_w = WIDTH - LABEL_WIDTH - 60
    chart = Chart(title, WIDTH, height)
    for i, (key, label, value) in enumerate(values):
        y = TOP + i * ROW
        w = value / largest * plot_w
        chart.labels.append(Label(LABEL_WIDTH - 8, y + ROW / 2 + 1, label, "end"))
        chart.bars.append(Bar(LABEL_WIDTH, y + 3, w, ROW - 8, (fixed or {}).get(key, colour),
                              key, value, label))
        chart.labels.append(Label(LABEL_WIDTH + w + 6, y + ROW / 2 + 1, str(value), "start"))
    return chart
