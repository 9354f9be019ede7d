"""Small charts as inline SVG, drawn on the server: no script, no chart library, no CDN."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 180
HEIGHT = 30


def sparkline(points: Sequence[float | None], *, title: str, slots: int) -> Markup:
    """The last `slots` points as a line over a filled area, scaled to its own maximum;
    a missing point (the source did not answer) leaves a gap."""
    step = WIDTH / max(slots - 1, 1)
    known = [value for value in points if value is not None]
    top = max(known, default=0.0) or 1.0
    offset = slots - len(points)
    runs: list[list[str]] = [[]]
    for index, value in enumerate(points):
        if value is None:
            runs.append([])
            continue
        x = (offset + index) * step
        y = HEIGHT - 2 - (HEIGHT - 4) * max(value, 0.0) / top
        runs[-1].append(f"{x:.1f},{y:.1f}")
    shapes = []
    for run in filter(None, runs):
        first_x, last_x = run[0].split(",")[0], run[-1].split(",")[0]
        area = f"{first_x},{HEIGHT} {' '.join(run)} {last_x},{HEIGHT}"
        shapes.append(f'<polygon class="area" points="{area}"/>'
                      f'<polyline class="line" points="{" ".join(run)}"/>')
    peak = f"peak {max(known):,.0f}" if known else "no data yet"
    return Markup(
        f'<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}, {peak}"><title>{escape(title)}: {peak}'
        f'</title><line class="base" x1="0" y1="{HEIGHT - 0.5}" x2="{WIDTH}" '
        f'y2="{HEIGHT - 0.5}"/>{"".join(shapes)}</svg>'
    )
