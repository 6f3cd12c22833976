"""Charts as server-rendered SVG: a line per series over the console's time window.

Written by hand rather than taken from a chart library: a few polylines and axis labels
are all the console needs, and SVG rendered on the server needs no JavaScript, no build
step and nothing fetched by the browser (a chart library from npm would need a bundler in
the build, and pygal's interactive charts load their script from the network). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")
WIDTH, HEIGHT = 420, 160
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 22, 22


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float | None]]  # (epoch seconds, value); None: no data


def nice_max(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above `v` (1 for none)."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    p = 10.0 ** math.floor(math.log10(v))
    return float(next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= v))


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100 or v == int(v):
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}"
    return f"{v:.2g}"


def line_chart(
    title: str, unit: str, series: Sequence[Series], now: float, span: float, chart_id: str
) -> str:
    """An SVG line chart of `series` over [now - span, now]."""
    values = [v for s in series for _, v in s.points if v is not None]
    top = nice_max(max(values, default=0.0))
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + w * max(0.0, min(1.0, (t - (now - span)) / span)) if span > 0 else LEFT

    def y(v: float) -> float:
        return TOP + h * (1.0 - v / top)

    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="14" class="title">{escape(title)}'
        + (f" ({escape(unit)})" if unit else "")
        + "</text>",
        f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" class="plot"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        gy = TOP + h * (1.0 - frac)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{gy:.1f}" y2="{gy:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 4}" y="{gy + 4:.1f}" class="tick" text-anchor="end">'
            f"{fmt(top * frac)}</text>"
        )
    minutes = span / 60.0
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 6}" class="tick">-{fmt(minutes)} min</text>'
        f'<text x="{LEFT + w}" y="{HEIGHT - 6}" class="tick" text-anchor="end">now</text>'
    )
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        # a gap (None) ends a line; each unbroken run is one polyline
        runs: list[list[str]] = [[]]
        for t, v in s.points:
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(t):.1f},{y(v):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
            elif run:
                parts.append(
                    f'<polyline class="series" fill="none" stroke="{colour}" '
                    f'stroke-width="1.5" points="{" ".join(run)}"/>'
                )
        lx = WIDTH - RIGHT - 56 * (len(series) - i)
        parts.append(
            f'<text x="{lx}" y="14" class="legend" fill="{colour}">{escape(s.label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
