"""SVG and text building blocks of `qikflow report`: escaping, numbers, axes, bars.

Every string that reaches the page goes through `esc`; every figure a test or a reader may
look up carries `data-figure` (its name) and `data-value` (the exact value).
"""

from __future__ import annotations

import html
import math
from datetime import datetime

MUTED, GRID = "#59636e", "#d8dee4"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def figure(name: str, value: object) -> str:
    """The attributes that name a figure and hold its exact value ("" for none)."""
    return f' data-figure="{esc(name)}" data-value="{esc("" if value is None else value)}"'


def number(value: int | float | None) -> str:
    """`1,234`; `-` for none."""
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def duration(seconds: float | None) -> str:
    """`0.4 s`, `12 s`, `3.5 min`, `1.2 h`: the unit a reader expects at that size."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def when(iso: str | None) -> str:
    """An ISO time as `2025-03-01 09:05 UTC`."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def ticks(maximum: float, most: int = 5) -> list[float]:
    """Round axis values from 0 to at least `maximum`: 1, 2 or 5 times a power of ten apart."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(maximum / step - 1e-9) + 1)]


def svg(width: int, height: int, label: str, body: str) -> str:
    """An inline SVG that scales to its container's width, named for screen readers."""
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{esc(label)}">'
            f"<title>{esc(label)}</title>{body}</svg>")


def text(x: float, y: float, content: str, *, anchor: str = "start", css: str = "",
         attrs: str = "") -> str:
    """A text element; `content` is escaped here."""
    klass = f' class="{css}"' if css else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}{attrs}>'
            f"{esc(content)}</text>")


def rect(x: float, y: float, width: float, height: float, fill: str, tip: str = "",
         attrs: str = "") -> str:
    """A bar; `tip` shows on hover (escaped here)."""
    title = f"<title>{esc(tip)}</title>" if tip else ""
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" '
            f'height="{max(height, 0):.1f}" fill="{fill}"{attrs}>{title}</rect>')


def y_axis(left: float, right: float, top: float, bottom: float, values: list[float],
           label: str) -> str:
    """Horizontal grid lines with their values, and the axis title written upwards."""
    scale = (bottom - top) / values[-1]
    parts = []
    for value in values:
        y = bottom - value * scale
        parts.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(text(left - 6, y + 4, number(int(value) if value == int(value) else value),
                          anchor="end", css="tick"))
    middle = (top + bottom) / 2
    parts.append(f'<text transform="translate(14 {middle:.1f}) rotate(-90)" '
                 f'text-anchor="middle" class="axis">{esc(label)}</text>')
    return "".join(parts)


def shorten(value: str, most: int) -> str:
    return value if len(value) <= most else value[: most - 1] + "…"
