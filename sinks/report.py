"""`qikflow report`: the figures of `qikflow stats` as one self-contained HTML page.

The page has inline CSS and inline SVG charts built here, no scripts, fonts or links, so it
opens anywhere without a network. Every value from the lake is escaped. Each figure carries
`data-figure`/`data-value` attributes, so tests (and scrapers) read the exact numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sinks._report_charts import failures_chart, funnel_chart, histogram, volume_chart
from sinks._report_style import CSS
from sinks._report_svg import duration, esc, figure, number, percent, when
from sinks.stats import Latency, Stats


def write_report(stats: Stats, path: Path) -> None:
    """Write the page next to `path`, then move it over `path` (a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    try:
        partial.write_text(render_report(stats), encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def render_report(stats: Stats) -> str:
    window = (f"{when(stats.since)} to {when(stats.until)}" if stats.since
              else f"all events up to {when(stats.until)}")
    head = (f'<header><h1>qikflow report</h1><p class="window">{esc(window)} · '
            f'<span{figure("events", stats.events)}>{number(stats.events)}</span> events'
            "</p></header>")
    body = _no_data() if stats.events == 0 else "".join([
        _summary(stats), _funnel(stats), _undelivered(stats), _volume(stats), _latencies(stats),
        _failures(stats), _accounts(stats), _pricing(stats), _contacts(stats),
    ])
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>qikflow report: {esc(window)}</title><style>{CSS}</style></head>"
            f"<body><main>{head}{body}</main></body></html>\n")


def _no_data() -> str:
    return ('<section class="card empty"><h2>No data yet</h2><p>The lake holds no events in '
            "this window. Start the lake sink (<code>qikflow sink lake</code>) and send "
            "traffic, or widen <code>--since</code>.</p></section>")


def _card(title: str, content: str, note: str = "", wide: bool = True) -> str:
    caption = f'<p class="note">{note}</p>' if note else ""
    return (f'<section class="card{" wide" if wide else ""}"><h2>{esc(title)}</h2>{caption}'
            f"{content}</section>")


def _tile(name: str, value: object, shown: str, label: str) -> str:
    return (f'<div class="tile"><span class="big"{figure(name, value)}>{esc(shown)}</span>'
            f"<span>{esc(label)}</span></div>")


def _summary(stats: Stats) -> str:
    funnel = stats.funnel
    return '<section class="tiles">' + "".join([
        _tile("summary.sent", funnel["sent"], number(funnel["sent"]), "messages sent"),
        _tile("summary.delivered_rate", funnel["delivered_rate"],
              percent(funnel["delivered_rate"]), "delivered of sent"),
        _tile("summary.read_rate", funnel["read_rate"], percent(funnel["read_rate"]),
              "read of sent"),
        _tile("summary.p50_deliver_s", stats.time_to_deliver.p50_s,
              duration(stats.time_to_deliver.p50_s), "median time to deliver"),
        _tile("summary.failed", funnel["failed"], number(funnel["failed"]), "failed"),
        _tile("summary.undelivered", stats.undelivered.messages,
              number(stats.undelivered.messages), "no delivery report after 1 h"),
    ]) + "</section>"


def _funnel(stats: Stats) -> str:
    return _card("Delivery funnel", funnel_chart(stats.funnel),
                 "Outbound messages with a status in the window, by the furthest status they "
                 "reached (read counts as delivered). Failed stands beside.", wide=False)


def _volume(stats: Stats) -> str:
    chart, legend, unit = volume_chart(stats.volume)
    return _card(f"Volume per {unit} by type", f'<div class="legend">{legend}</div>{chart}',
                 f"Events per {unit} of their provider time, stacked by type (totals in "
                 "the legend).")


def _latencies(stats: Stats) -> str:
    parts = []
    for name, title, latency, colour in (
        ("time_to_deliver", "Time to deliver", stats.time_to_deliver, "#6cc5b0"),
        ("time_to_read", "Time to read", stats.time_to_read, "#3ca951"),
    ):
        parts.append(f'<div class="half"><h3>{title}</h3>{_quantiles(name, latency)}'
                     f"{histogram(name, f'{title}: messages per bucket', latency, colour)}"
                     "</div>")
    return _card("Time to deliver and to read", f'<div class="pair">{"".join(parts)}</div>',
                 "From the earliest sent time to the earliest delivered / read time of each "
                 "message (provider timestamps); messages per bucket.")


def _quantiles(name: str, latency: Latency) -> str:
    items = [("messages", "count", number(latency.count))] + [
        (label, key, duration(getattr(latency, key)))
        for label, key in (("p50", "p50_s"), ("p90", "p90_s"), ("p99", "p99_s"))]
    return '<p class="quantiles">' + " · ".join(
        f"{label} <b{figure(f'{name}.{key}', getattr(latency, key))}>{esc(shown)}</b>"
        for label, key, shown in items) + "</p>"


def _failures(stats: Stats) -> str:
    if not stats.failures:
        return _card("Failures by error code", '<p class="none">No failed messages.</p>')
    return _card("Failures by error code", failures_chart(stats.failures),
                 "Messages with a failed status, by the provider's error code.")


def _table(header: list[str], rows: list[str], numeric: range = range(1, 99)) -> str:
    cells = "".join(f'<th{" class=num" if n in numeric else ""}>{esc(name)}</th>'
                    for n, name in enumerate(header))
    body = "".join(rows) or f'<tr><td colspan="{len(header)}" class="none">none</td></tr>'
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _cell(name: str, value: object, shown: str, numeric: bool = True) -> str:
    return f'<td{" class=num" if numeric else ""}{figure(name, value)}>{esc(shown)}</td>'


def _accounts(stats: Stats) -> str:
    rows = []
    for account in stats.accounts:
        key, funnel = f"accounts.{account.account}", account.funnel
        codes = ", ".join(
            f"{'no code' if row['error_code'] is None else row['error_code']} × "
            f"{row['messages']}" for row in account.failures) or "-"
        rows.append(
            f"<tr><th>{esc(account.account or '(no account)')}</th>"
            + _cell(f"{key}.funnel.sent", funnel["sent"], number(funnel["sent"]))
            + "".join(_cell(f"{key}.funnel.{stage}", funnel[stage],
                            f"{number(funnel[stage])} ({percent(funnel[f'{stage}_rate'])})")
                      for stage in ("delivered", "read"))
            + _cell(f"{key}.funnel.failed", funnel["failed"], number(funnel["failed"]))
            + "".join(_cell(f"{key}.{name}.{q}", getattr(latency, q),
                            duration(getattr(latency, q)))
                      for name, latency in (("time_to_deliver", account.time_to_deliver),
                                            ("time_to_read", account.time_to_read))
                      for q in ("p50_s", "p90_s"))
            + f'<td{figure(f"{key}.failures", _codes(account.failures))}>{esc(codes)}</td>'
            + "</tr>")
    return _card("By account", _table(
        ["account", "sent", "delivered", "read", "failed", "deliver p50", "deliver p90",
         "read p50", "read p90", "failures by code"], rows, range(1, 9)),
        "The funnel, times and failures of each account's outbound messages.")


def _codes(failures: list[dict[str, Any]]) -> str:
    return ",".join(f"{row['error_code']}:{row['messages']}" for row in failures)


def _undelivered(stats: Stats) -> str:
    waiting = stats.undelivered
    rows = [
        f"<tr><td{figure(f'undelivered.example.{n}', row['message_id'])}>"
        f"<code>{esc(row['message_id'])}</code></td><td>{esc(row['account'] or '-')}</td>"
        f"<td>{esc(row['contact'] or '-')}</td>"
        f"<td>{esc(when(row['sent_at']))}</td></tr>"
        for n, row in enumerate(waiting.examples)]
    count = figure("undelivered.messages", waiting.messages)
    content = (f'<p class="headline"><span class="big"{count}>'
               f"{number(waiting.messages)}</span> messages sent before "
               f"{esc(when(waiting.sent_before))} have no delivery report yet "
               "(neither delivered, read nor failed).</p>")
    if rows:
        content += ("<h3>The longest waiting</h3>"
                    + _table(["message id", "account", "contact", "sent at"], rows, range(0)))
    return _card("No delivery report after 1 hour", content, wide=False)


def _pricing(stats: Stats) -> str:
    pricing = stats.pricing
    rows = [
        f"<tr><th>{esc(row['category'] or '(not stated)')}</th>"
        + "".join(_cell(f"pricing.{row['category'] or '-'}.{key}", row[key], number(row[key]))
                  for key in ("messages", "billable", "not_billable")) + "</tr>"
        for row in pricing.categories]
    rows.append("<tr class=total><th>all</th>" + "".join(
        _cell(f"pricing.{key}", getattr(pricing, key), number(getattr(pricing, key)))
        for key in ("messages", "billable", "not_billable")) + "</tr>")
    note = (f"Each outbound message once, by the pricing its most advanced status states. "
            f'<span{figure("pricing.unstated", pricing.unstated)}>{number(pricing.unstated)}'
            "</span> say nothing about billing.")
    return _card("Pricing", _table(["category", "messages", "billable", "not billable"], rows),
                 note, wide=False)


def _contacts(stats: Stats) -> str:
    rows = [f"<tr><td>{esc(row['contact'] or '-')}</td>"
            + _cell(f"top_contacts.{row['contact']}", row["messages"], number(row["messages"]))
            + "</tr>" for row in stats.top_contacts]
    return _card("Top contacts", _table(["contact", "incoming messages"], rows),
                 "Customers by incoming messages.", wide=False)
