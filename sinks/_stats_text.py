"""Human-readable tables for `qikflow stats`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sinks.stats import LATENCY_BUCKETS, AccountStats, Latency, Stats


def render(stats: Stats) -> str:
    window = f"since {stats.since}" if stats.since else "all time"
    funnel, pricing = stats.funnel, stats.pricing
    sections = [
        f"qikflow stats ({window}): {stats.events} events",
        _section("Volume by type per hour", ["hour", "type", "events"],
                 [[row["hour"], row["type"], row["events"]] for row in stats.volume]),
        _section("Delivery funnel", ["stage", "messages", "rate of sent"], [
            ["sent", funnel.get("sent", 0), _percent(1.0 if funnel.get("sent") else None)],
            ["delivered", funnel.get("delivered", 0), _percent(funnel.get("delivered_rate"))],
            ["read", funnel.get("read", 0), _percent(funnel.get("read_rate"))],
            ["failed", funnel.get("failed", 0), ""],
        ]),
        _section("Latency (seconds)", ["measure", "messages", "p50", "p90", "p99"], [
            _latency_row("time to deliver", stats.time_to_deliver),
            _latency_row("time to read", stats.time_to_read),
        ]),
        _section("Messages per latency bucket", ["measure", *(b[0] for b in LATENCY_BUCKETS)], [
            ["time to deliver", *(b["messages"] for b in stats.time_to_deliver.buckets)],
            ["time to read", *(b["messages"] for b in stats.time_to_read.buckets)],
        ]),
        _section("Failures by error code", ["error code", "title", "messages"],
                 [[row["error_code"] if row["error_code"] is not None else "-",
                   row["error_title"] or "", row["messages"]] for row in stats.failures]),
        _section("By account", ["account", "sent", "delivered", "read", "failed",
                                "deliver p50 s", "deliver p90 s", "read p50 s", "read p90 s",
                                "failures by code"],
                 [_account_row(account) for account in stats.accounts]),
        _section(f"No delivery report after 1 h (sent before {stats.undelivered.sent_before}): "
                 f"{stats.undelivered.messages} messages, the longest waiting",
                 ["message id", "account", "contact", "sent at"],
                 [[row["message_id"], row["account"] or "-", row["contact"] or "-",
                   row["sent_at"]] for row in stats.undelivered.examples]),
        _section(f"Pricing of {pricing.messages} outbound messages: {pricing.billable} billable, "
                 f"{pricing.not_billable} not billable, {pricing.unstated} not stated",
                 ["category", "messages", "billable", "not billable"],
                 [[row["category"] or "(not stated)", row["messages"], row["billable"],
                   row["not_billable"]] for row in pricing.categories]),
        _section("Top contacts by inbound volume", ["contact", "messages"],
                 [[row["contact"] or "-", row["messages"]] for row in stats.top_contacts]),
    ]
    return "\n\n".join(sections) + "\n"


def _section(title: str, header: Sequence[str], rows: list[list[Any]]) -> str:
    if not rows:
        return f"{title}\n  (none)"
    cells = [[str(value) for value in row] for row in [list(header), *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  " + "  ".join(value.ljust(width) for value, width in zip(row, widths,
                                                                        strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  " + "  ".join("-" * width for width in widths))
    return f"{title}\n" + "\n".join(lines)


def _account_row(account: AccountStats) -> list[Any]:
    funnel = account.funnel
    return [
        account.account or "-", funnel["sent"],
        f"{funnel['delivered']} ({_percent(funnel['delivered_rate'])})",
        f"{funnel['read']} ({_percent(funnel['read_rate'])})", funnel["failed"],
        _seconds(account.time_to_deliver.p50_s), _seconds(account.time_to_deliver.p90_s),
        _seconds(account.time_to_read.p50_s), _seconds(account.time_to_read.p90_s),
        ", ".join(f"{row['error_code'] if row['error_code'] is not None else '-'} x"
                  f"{row['messages']}" for row in account.failures) or "-",
    ]


def _latency_row(name: str, latency: Latency) -> list[Any]:
    return [name, latency.count, _seconds(latency.p50_s), _seconds(latency.p90_s),
            _seconds(latency.p99_s)]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
