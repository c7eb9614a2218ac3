"""Charts as SVG, drawn on the server: no script, no CDN, readable without JavaScript.

Colours come from the stylesheet (classes ``s0`` to ``s7``: the Okabe-Ito palette, which stays
distinguishable with the common colour-vision deficiencies); every bar and point has a
``<title>`` with its exact value, and each chart sits next to a table of the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH = 720
HEIGHT = 280
LEFT = 48
RIGHT = 12
TOP = 34
BOTTOM = 46
SERIES_CLASSES = 8

Values = Sequence[float | None]


def _nice_max(value: float, *, whole: bool = False) -> float:
    """The top of the axis: a round number at or above ``value``; for counts (``whole``) a
    multiple of 4, so the four gridlines fall on whole numbers."""
    if whole:
        tick = max(1, math.ceil(value / 4))
        return 4.0 * (tick if tick <= 5 else int(_nice_max(tick)))
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return float(step * exponent)
    return float(10 * exponent)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _frame(title: str, body: list[str], legend: Sequence[str]) -> Markup:
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    x = LEFT
    for i, name in enumerate(legend):
        label = escape(name)
        parts.append(
            f'<rect class="s{i % SERIES_CLASSES}" x="{x}" y="8" width="12" height="12" rx="2"/>'
            f'<text class="legend" x="{x + 16}" y="18">{label}</text>'
        )
        x += 16 + 7 * len(name) + 18
    parts.extend(body)
    parts.append("</svg>")
    return Markup("".join(parts))


def _axes(top: float, unit: str, labels: Sequence[str]) -> tuple[list[str], float, float]:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    out = []
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_number(value)}</text>"
        )
    if unit:
        out.append(
            f'<text class="unit" x="{WIDTH - RIGHT}" y="18" text-anchor="end">{escape(unit)}</text>'
        )
    slot = plot_w / max(len(labels), 1)
    widest = max((len(label) for label in labels), default=1) * 7 + 10
    every = max(1, math.ceil(widest / slot))
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = LEFT + slot * (i + 0.5)
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return out, slot, plot_h


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[tuple[str, Values]], unit: str
) -> Markup:
    """Stacked vertical bars, one per label."""
    totals = [sum((s[1][i] or 0) for s in series) for i in range(len(labels))]
    whole = all(float(v).is_integer() for _, values in series for v in values if v is not None)
    top = _nice_max(max(totals, default=0), whole=whole)
    body, slot, plot_h = _axes(top, unit, labels)
    width = max(slot * 0.7, 1)
    for i, label in enumerate(labels):
        y = TOP + plot_h
        x = LEFT + slot * i + (slot - width) / 2
        for k, (name, values) in enumerate(series):
            value = values[i] or 0
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            body.append(
                f'<rect class="s{k % SERIES_CLASSES}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{width:.1f}" height="{h:.1f}"><title>{escape(label)} · '
                f"{escape(name)}: {_number(value)}</title></rect>"
            )
    return _frame(title, body, [name for name, _ in series])


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[tuple[str, Values]], unit: str
) -> Markup:
    """Lines with a dot per known value; an unknown value breaks the line."""
    known = [v for _, values in series for v in values if v is not None]
    top = _nice_max(max(known, default=0))
    body, slot, plot_h = _axes(top, unit, labels)
    for k, (name, values) in enumerate(series):
        css = f"s{k % SERIES_CLASSES}"
        segment: list[str] = []
        dots: list[str] = []
        segments: list[list[str]] = []
        for i, value in enumerate(values):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x = LEFT + slot * (i + 0.5)
            y = TOP + plot_h - plot_h * value / top
            segment.append(f"{x:.1f},{y:.1f}")
            dots.append(
                f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="3.5"><title>'
                f"{escape(labels[i])} · {escape(name)}: {_number(value)}</title></circle>"
            )
        if segment:
            segments.append(segment)
        for points in segments:
            body.append(f'<polyline class="line {css}" points="{" ".join(points)}"/>')
        body.extend(dots)
    return _frame(title, body, [name for name, _ in series])


def hbar_chart(title: str, labels: Sequence[str], values: Values, unit: str) -> Markup:
    """Horizontal bars, one per label (statuses, runbooks)."""
    rows = max(len(labels), 1)
    height = TOP + rows * 26 + 10
    top = _nice_max(max((v or 0 for v in values), default=0))
    label_w = 200
    plot_w = WIDTH - label_w - RIGHT - 60
    body = [f"<title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * 26
        shown = label if len(label) <= 28 else label[:27] + "…"
        body.append(
            f'<text class="tick" x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(shown)}<title>{escape(label)}</title></text>"
        )
        if value is None:
            body.append(f'<text class="tick" x="{label_w + 4}" y="{y + 15}">unknown</text>')
            continue
        w = plot_w * value / top
        body.append(
            f'<rect class="s0" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="18">'
            f"<title>{escape(label)}: {_number(value)} {escape(unit)}</title></rect>"
            f'<text class="tick" x="{label_w + w + 6:.1f}" y="{y + 16}">{_number(value)}</text>'
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>'
    )
