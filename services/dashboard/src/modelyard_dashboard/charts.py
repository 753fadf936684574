"""Charts as inline SVG, drawn on the server: no script, no external file, and styled only by classes
(colours live in static/dashboard.css, so the page's Content-Security-Policy needs no inline styles).

Every chart is an ``<svg role="img">`` with a title and a description for screen readers; the page
puts the same numbers in a table beside or under it. Values are drawn, never parsed back: each point
and bar carries a ``<title>`` with its exact figure (a tooltip on hover).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 58, 10, 10, 26
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
TICKS = 4  # about this many intervals on a y axis
MAX_X_LABELS = 6

Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    css: str  # colour class, e.g. "c-slm"


def nice_scale(peak: float, target_ticks: int = TICKS) -> tuple[float, float]:
    """(top, step) of a y axis from 0 that holds ``peak``: the step is 1, 2 or 5 x 10^k (every tick
    reads as a short round number), with as close to ``target_ticks`` intervals as such steps allow."""
    if peak <= 0 or math.isnan(peak):
        return 1.0, 0.25
    scale = 10 ** math.floor(math.log10(peak / target_ticks))
    candidates = [m * scale for m in (1, 2, 5, 10, 20)]
    intervals = {step: math.ceil(peak / step * (1 - 1e-12)) for step in candidates}
    step = min(candidates, key=lambda st: (abs(intervals[st] - target_ticks), -st))
    return step * intervals[step], step


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _open(chart_id: str, title: str, desc: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'xmlns="http://www.w3.org/2000/svg" id="{chart_id}">',
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - PLOT_H * (value / top)


def _axes(scale: tuple[float, float], fmt: Format, labels: Sequence[str], slot: float, centred: bool,
          thin: bool = True) -> list[str]:
    top, step = scale
    out = []
    for i in range(round(top / step) + 1):
        v = step * i
        y = _y(v, top)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y)}" y2="{_num(y)}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{_num(y + 4)}" text-anchor="end">{escape(fmt(v))}</text>')
    if labels:
        step = max(1, math.ceil(len(labels) / MAX_X_LABELS)) if thin else 1
        shown = list(range(0, len(labels), step))
        if shown[-1] != len(labels) - 1 and len(labels) > 1:
            shown[-1] = len(labels) - 1  # always label the last day
        for i in shown:
            x = LEFT + slot * (i + 0.5) if centred else LEFT + (slot * i if len(labels) > 1 else PLOT_W / 2)
            # The last point of a line sits on the plot's right edge: its label ends there instead.
            anchor = "end" if not centred and len(labels) > 1 and i == len(labels) - 1 else "middle"
            out.append(f'<text class="tick" x="{_num(x)}" y="{HEIGHT - 8}" text-anchor="{anchor}">{escape(labels[i])}</text>')
    return out


def line_chart(chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series], fmt: Format,
               band: tuple[float, float, str] | None = None, floor_top: float = 0.0) -> Markup:
    """Lines over days; a None value (a day without usage) is a gap, not a zero. ``band`` (low, high,
    label) shades a horizontal range, e.g. a healthy band."""
    peak = max([v for s in series for v in s.values if v is not None] + [band[1] if band else 0, floor_top, 0])
    scale = nice_scale(peak)
    top = scale[0]
    n = len(labels)
    slot = PLOT_W / (n - 1) if n > 1 else PLOT_W
    parts = _open(chart_id, title, desc)
    parts += _axes(scale, fmt, labels, slot, centred=False)
    if band:
        y_hi, y_lo = _y(min(band[1], top), top), _y(band[0], top)
        parts.append(f'<rect class="band" x="{LEFT}" y="{_num(y_hi)}" width="{PLOT_W}" height="{_num(y_lo - y_hi)}">'
                     f'<title>{escape(band[2])}</title></rect>')
    for s in series:
        run: list[str] = []
        for i, (label, v) in enumerate(zip(labels, s.values, strict=True)):
            if v is None:
                parts += _polyline(run, s.css)
                run = []
                continue
            x, y = LEFT + (slot * i if n > 1 else PLOT_W / 2), _y(v, top)
            run.append(f"{_num(x)},{_num(y)}")
            parts.append(f'<circle class="dot {s.css}" cx="{_num(x)}" cy="{_num(y)}" r="2.5">'
                         f'<title>{escape(label)}: {escape(s.name)} {escape(fmt(v))}</title></circle>')
        parts += _polyline(run, s.css)
    parts.append("</svg>")
    return Markup("".join(parts))


def _polyline(points: list[str], css: str) -> list[str]:
    return [f'<polyline class="line {css}" points="{" ".join(points)}"/>'] if len(points) > 1 else []


def bar_chart(chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series], fmt: Format,
              stacked: bool = True, thin_labels: bool = True) -> Markup:
    """Bars per label: the series stacked (a total split in parts) or side by side. Days thin their
    labels out (``thin_labels``); categories (organisations, models) label every bar."""
    n = max(len(labels), 1)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))] if stacked else [v or 0 for s in series for v in s.values]
    scale = nice_scale(max(totals, default=0))
    top = scale[0]
    slot = PLOT_W / n
    width = slot * 0.7 / (1 if stacked else max(len(series), 1))
    parts = _open(chart_id, title, desc)
    parts += _axes(scale, fmt, labels, slot, centred=True, thin=thin_labels)
    for i, label in enumerate(labels):
        base = 0.0
        for k, s in enumerate(series):
            v = s.values[i] or 0
            x = LEFT + slot * i + slot * 0.15 + (0 if stacked else k * width)
            lo, hi = (base, base + v) if stacked else (0.0, v)
            y = _y(hi, top)
            parts.append(f'<rect class="bar {s.css}" x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" '
                         f'height="{_num(_y(lo, top) - y)}"><title>{escape(label)}: {escape(s.name)} {escape(fmt(v))}</title></rect>')
            base = hi if stacked else base
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(chart_id: str, title: str, parts_: Sequence[tuple[str, float, str]], fmt: Format) -> Markup:
    """One horizontal bar split into shares of a whole: (name, value, css class) per part."""
    total = sum(v for _, v, _ in parts_)
    height = 40
    out = _open(chart_id, title, ", ".join(f"{name}: {fmt(v)}" for name, v, _ in parts_), height)
    x = 0.0
    for name, v, css in parts_:
        w = WIDTH * v / total if total else 0.0
        out.append(f'<rect class="bar {css}" x="{_num(x)}" y="4" width="{_num(w)}" height="{height - 8}">'
                   f'<title>{escape(name)}: {escape(fmt(v))}</title></rect>')
        x += w
    if not total:
        out.append(f'<rect class="bar empty" x="0" y="4" width="{WIDTH}" height="{height - 8}"><title>nothing yet</title></rect>')
    out.append("</svg>")
    return Markup("".join(out))


def gauge_bar(chart_id: str, title: str, fraction: float, level: str) -> Markup:
    """A quota gauge: a track, the used part coloured by level, and marks at 80% and 100%."""
    fraction = max(0.0, min(1.0, fraction))
    return Markup(
        f'<svg class="gauge-bar" viewBox="0 0 200 14" preserveAspectRatio="none" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="track" x="0" y="2" width="200" height="10" rx="2"/>'
        f'<rect class="fill level-{escape(level)}" x="0" y="2" width="{_num(200 * fraction)}" height="10" rx="2"/>'
        f'<line class="mark" x1="160" x2="160" y1="0" y2="14"/></svg>'
    )
