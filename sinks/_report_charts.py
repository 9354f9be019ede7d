"""The charts of `qikflow report`, as inline SVG built from a `Stats`' figures."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sinks._report_svg import (
    MUTED,
    esc,
    figure,
    number,
    percent,
    rect,
    shorten,
    svg,
    text,
    ticks,
    y_axis,
)
from sinks.stats import Latency

FUNNEL_COLOURS = {"sent": "#4269d0", "delivered": "#6cc5b0", "read": "#3ca951",
                  "failed": "#ff725c"}
# Statuses keep their funnel colours in the volume chart; other types take the rest in turn.
TYPE_COLOURS = {f"status.{stage}": colour for stage, colour in FUNNEL_COLOURS.items()}
OTHER_COLOURS = ("#efb118", "#a463f2", "#ff8ab7", "#97bbf5", "#9c6b4e", "#f4a6a6",
                 "#b5d99c", "#c9b2f0")
OTHER_TYPES = "#9498a0"
VOLUME_TYPES = 7  # the most frequent types get a colour each, the rest are "other"
HOURLY_UP_TO = 14 * 24  # longer windows are drawn per day
FAILURE_ROWS = 12


def funnel_chart(funnel: dict[str, Any]) -> str:
    """Horizontal bars: sent, delivered, read (shares of sent), failed."""
    width, label_w, value_w, row_h = 500, 76, 150, 40
    sent = funnel.get("sent") or 0
    scale = (width - label_w - value_w) / max(sent, funnel.get("failed") or 0, 1)
    rows = []
    for n, stage in enumerate(("sent", "delivered", "read", "failed")):
        count = funnel.get(stage) or 0
        y = 10 + n * row_h
        rate = None if stage in ("sent", "failed") else f"{stage}_rate"
        share = (f'<tspan class="share"{figure(f"funnel.{rate}", funnel.get(rate))}> · '
                 f"{percent(funnel.get(rate))} of sent</tspan>") if rate else ""
        rows.append(
            text(label_w - 10, y + 19, stage, anchor="end", css="label")
            + rect(label_w, y, count * scale, 28, FUNNEL_COLOURS[stage],
                   f"{stage}: {number(count)} messages")
            + f'<text x="{label_w + count * scale + 8:.1f}" y="{y + 19}" class="value">'
            f"<tspan{figure(f'funnel.{stage}', count)}>{number(count)}</tspan>{share}</text>")
    return svg(width, 20 + 4 * row_h, "Delivery funnel: outbound messages by the furthest "
               "status they reached", "".join(rows))


def volume_chart(volume: list[dict[str, Any]]) -> tuple[str, str, str]:
    """Stacked bars of events per hour (per day over two weeks) by type.

    Returns the SVG, its HTML legend and the unit (`hour` or `day`)."""
    if not volume:
        return "", "", "hour"
    totals: dict[str, int] = defaultdict(int)
    for row in volume:
        totals[row["type"]] += row["events"]
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    shown = ranked if len(ranked) <= VOLUME_TYPES + 1 else ranked[:VOLUME_TYPES]
    series = shown + (["other"] if len(shown) < len(ranked) else [])
    spare = iter(OTHER_COLOURS)
    colours = {name: TYPE_COLOURS.get(name) or next(spare) for name in shown}
    colours["other"] = OTHER_TYPES
    hours = [datetime.fromisoformat(row["hour"]) for row in volume]
    unit = "hour" if (max(hours) - min(hours)) / timedelta(hours=1) < HOURLY_UP_TO else "day"
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    first = _bin(min(hours), unit)
    count = int((_bin(max(hours), unit) - first) / step) + 1
    stacks: list[dict[str, int]] = [defaultdict(int) for _ in range(count)]
    for at, row in zip(hours, volume, strict=True):
        name = row["type"] if row["type"] in shown else "other"
        stacks[int((_bin(at, unit) - first) / step)][name] += row["events"]

    width, height, left, right, top, bottom = 1000, 300, 64, 990, 12, 250
    axis = ticks(max(sum(stack.values()) for stack in stacks))
    scale, slot = (bottom - top) / axis[-1], (right - left) / count
    bar = min(slot * 0.8, 48) if slot > 4 else slot
    parts = [y_axis(left, right, top, bottom, axis, f"events per {unit}")]
    for n, stack in enumerate(stacks):
        at, y = first + n * step, float(bottom)
        x = left + n * slot + (slot - bar) / 2
        label = at.strftime("%Y-%m-%d %H:%M UTC" if unit == "hour" else "%Y-%m-%d")
        for name in series:
            if not stack.get(name):
                continue
            h = stack[name] * scale
            y -= h
            key = f"volume.{at.isoformat()}.{name}"
            parts.append(rect(x, y, bar, h, colours[name],
                              f"{label} · {name}: {number(stack[name])} events",
                              figure(key, stack[name])))
    parts.append(_time_labels(first, count, step, unit, left, right, bottom))
    legend = "".join(
        f'<span class="key"><i style="background:{colours[name]}"></i>{esc(name)} '
        f"<b>{number(totals[name] if name != 'other' else _rest(totals, shown))}</b></span>"
        for name in series)
    return (svg(width, height, f"Events per {unit} by type", "".join(parts)), legend, unit)


def _bin(at: datetime, unit: str) -> datetime:
    hour = at.replace(minute=0, second=0, microsecond=0)
    return hour.replace(hour=0) if unit == "day" else hour


def _rest(totals: dict[str, int], shown: list[str]) -> int:
    return sum(count for name, count in totals.items() if name not in shown)


def _time_labels(first: datetime, count: int, step: timedelta, unit: str, left: float,
                 right: float, bottom: float) -> str:
    """About a dozen labels at round times; the date under the first and at each new day."""
    every = next(n for n in (1, 2, 3, 6, 12, 24, 48, 7 * 24, 14 * 24, 28 * 24, 10**9)
                 if count / n <= 12) if unit == "hour" else max(1, -(-count // 12))
    parts, last_day = [], None
    for n in range(count):
        at = first + n * step
        on_grid = (at.hour % every == 0) if unit == "hour" and every < 24 else n % every == 0
        if not on_grid:
            continue
        x = left + (n + 0.5) * (right - left) / count
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" '
                     f'stroke="{MUTED}"/>')
        parts.append(text(x, bottom + 17, at.strftime("%H:%M" if unit == "hour" else "%d %b"),
                          anchor="middle", css="tick"))
        if unit == "hour" and at.date() != last_day:
            parts.append(text(x, bottom + 32, at.strftime("%d %b"), anchor="middle",
                              css="tick date"))
            last_day = at.date()
    parts.append(text((left + right) / 2, bottom + 46, "time (UTC)", anchor="middle",
                      css="axis"))
    return "".join(parts)


def histogram(name: str, title: str, latency: Latency, colour: str) -> str:
    """Messages per latency bucket, the count on top of each bar."""
    width, height, left, right, top, bottom = 480, 270, 56, 470, 22, 220
    counts = [bucket["messages"] for bucket in latency.buckets]
    axis = ticks(max(counts, default=0))
    scale, slot = (bottom - top) / axis[-1], (right - left) / len(counts)
    parts = [y_axis(left, right, top, bottom, axis, "messages")]
    for n, bucket in enumerate(latency.buckets):
        x, h = left + n * slot + slot * 0.12, bucket["messages"] * scale
        parts.append(
            f"<g{figure(name + '.' + bucket['bucket'], bucket['messages'])}>"
            + rect(x, bottom - h, slot * 0.76, h, colour,
                   f"{bucket['bucket']}: {number(bucket['messages'])} messages")
            + text(x + slot * 0.38, bottom - h - 5, number(bucket["messages"]),
                   anchor="middle", css="value")
            + "</g>")
        parts.append(text(x + slot * 0.38, bottom + 17, bucket["bucket"], anchor="middle",
                          css="tick"))
    parts.append(text((left + right) / 2, bottom + 40, "time after sent", anchor="middle",
                      css="axis"))
    return svg(width, height, title, "".join(parts))


def failures_chart(failures: list[dict[str, Any]]) -> str:
    """Horizontal bars, one per error code, most messages first, titled."""
    width, label_w, value_w, row_h = 1000, 400, 80, 30
    rows = failures[:FAILURE_ROWS]
    rest = sum(row["messages"] for row in failures[FAILURE_ROWS:])
    scale = (width - label_w - value_w) / max([row["messages"] for row in rows] + [rest, 1])
    parts = []
    for n, row in enumerate(rows):
        code = "no code" if row["error_code"] is None else str(row["error_code"])
        caption = f"{code} · {row['error_title'] or 'no title'}"
        y = 6 + n * row_h
        parts.append(
            f"<g{figure(f'failures.{code}', row['messages'])}>"
            + text(label_w - 10, y + 16, shorten(caption, 52), anchor="end", css="label")
            + rect(label_w, y, row["messages"] * scale, 22, "#ff725c",
                   f"{caption}: {number(row['messages'])} messages")
            + text(label_w + row["messages"] * scale + 8, y + 16, number(row["messages"]),
                   css="value")
            + "</g>")
    if rest:
        y = 6 + len(rows) * row_h
        parts.append(text(label_w - 10, y + 16, f"{len(failures) - len(rows)} other codes",
                          anchor="end", css="label")
                     + rect(label_w, y, rest * scale, 22, OTHER_TYPES)
                     + text(label_w + rest * scale + 8, y + 16, number(rest), css="value"))
    shown = len(rows) + (1 if rest else 0)
    return svg(width, 12 + shown * row_h, "Failed messages by error code", "".join(parts))
