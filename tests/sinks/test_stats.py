"""From the topics into the lake, and `qikflow stats` against figures computed by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sinks.base import SinkRecord
from sinks.lake import LakeSink
from sinks.stats import compute_stats, parse_duration
from streams.events import Event, OptOutEvent, Pricing, StatusContent
from tests.sinks.events import T0, optout, produce, status, text_message
from tests.sinks.harness import duck, fast_settings, running_driver, wait_until

# Outbound messages: (id, sent after T0 s, delivered after sent s, read after sent s, failure)
OUTBOUND = [
    ("o1", 0, 2, 30, None), ("o2", 60, 4, 90, None), ("o3", 120, 6, None, None),
    ("o4", 180, 3, 600, None), ("o5", 240, 10, None, None), ("o6", 300, None, None, None),
    ("o7", 360, None, None, (131026, "Message undeliverable")),
    ("o8", 3600, 5, 45, None), ("o9", 3700, 1, None, None),
    ("o10", None, None, None, (131047, "Re-engagement message")),
    ("o11", 3800, None, None, (131026, "Message undeliverable")),
    ("o12", 7000, None, None, None),
]
GLOBEX = {"o8", "o9", "o10", "o11", "o12"}  # the other messages are acme's
# (message, status) -> (billable, category) of `content.pricing`; o5's statuses disagree.
PRICING = {
    ("o1", "sent"): (True, "marketing"), ("o1", "delivered"): (True, "marketing"),
    ("o1", "read"): (True, "marketing"), ("o2", "sent"): (True, "utility"),
    ("o3", "sent"): (False, "service"), ("o5", "sent"): (True, "marketing"),
    ("o5", "delivered"): (False, "utility"), ("o8", "delivered"): (True, "authentication"),
    ("o9", "sent"): (None, "marketing"),
}
V1_PRICING_CATEGORY = {("o4", "sent"): "utility"}  # version 1's flat `pricing_category`
INBOUND = {"+919800000001": 6, "+919800000002": 3, "+919800000003": 1}
# Counted by hand from the tables above: messages per latency bucket, and the pricing.
DELIVER_BUCKETS = {None: {"1-5s": 4, "5-30s": 3}, "acme": {"1-5s": 3, "5-30s": 2},
                   "globex": {"1-5s": 1, "5-30s": 1}}
READ_BUCKETS = {None: {"30s-2m": 3, "10m-1h": 1}, "acme": {"30s-2m": 2, "10m-1h": 1},
                "globex": {"30s-2m": 1}}
EXPECTED_PRICING: dict[str, Any] = {
    "messages": 12, "billable": 3, "not_billable": 2, "unstated": 7, "categories": [
        {"category": "utility", "messages": 3, "billable": 1, "not_billable": 1},
        {"category": "marketing", "messages": 2, "billable": 1, "not_billable": 0},
        {"category": "authentication", "messages": 1, "billable": 1, "not_billable": 0},
        {"category": "service", "messages": 1, "billable": 0, "not_billable": 1},
        {"category": None, "messages": 5, "billable": 0, "not_billable": 0},
    ],
}
BUCKETS = [("<1s", 0, 1), ("1-5s", 1, 5), ("5-30s", 5, 30), ("30s-2m", 30, 120),
           ("2-10m", 120, 600), ("10m-1h", 600, 3600), (">1h", 3600, None)]


def account_of(message_id: str) -> str:
    return "globex" if message_id in GLOBEX else "acme"


def _priced(event: Event, message_id: str, state: str) -> Event:
    """The status with its account and the pricing the tables above give it."""
    assert isinstance(event.content, StatusContent)
    content = event.content
    if (message_id, state) in PRICING:
        billable, category = PRICING[(message_id, state)]
        content = content.model_copy(update={"pricing": Pricing(
            billable=billable, pricing_model="PMP", type="regular", category=category)})
    if (message_id, state) in V1_PRICING_CATEGORY:
        content = content.model_copy(
            update={"pricing_category": V1_PRICING_CATEGORY[(message_id, state)]})
    return event.model_copy(update={"account": account_of(message_id), "content": content})


def fixture_events() -> list[Event | OptOutEvent]:
    """The events above, with statuses in reverse order and every third one sent twice."""
    events: list[Event | OptOutEvent] = []
    for message_id, sent, deliver, read, failure in OUTBOUND:
        lifecycle: list[Event] = []
        if sent is not None:
            sent_at = T0 + timedelta(seconds=sent)
            lifecycle.append(status(message_id, "sent", at=sent_at))
            if deliver is not None:
                lifecycle.append(status(message_id, "delivered",
                                        at=sent_at + timedelta(seconds=deliver)))
            if read is not None:
                lifecycle.append(status(message_id, "read", at=sent_at + timedelta(seconds=read)))
        if failure is not None:
            lifecycle.append(status(message_id, "failed", at=T0 + timedelta(seconds=400),
                                    error_code=failure[0], error_title=failure[1]))
        events += reversed([_priced(event, message_id, event.type.removeprefix("status."))
                            for event in lifecycle])
    for contact, messages in INBOUND.items():
        for n in range(messages):
            events.append(text_message(f"{contact[-1]}-{n}", contact,
                                       at=T0 + timedelta(minutes=7 * n)))
    events.append(optout("1-0", "+919800000001"))
    return events + events[::3]


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (DuckDB's quantile_cont)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _buckets(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"bucket": label, "from_s": low, "to_s": high, "messages": counts.get(label, 0)}
            for label, low, high in BUCKETS]


def _latency(seconds: list[float], buckets: dict[str, int]) -> dict[str, Any]:
    assert sum(buckets.values()) == len(seconds)
    return {"count": len(seconds),
            **{f"p{p}_s": round(quantile(seconds, p / 100), 3) for p in (50, 90, 99)},
            "buckets": _buckets(buckets)}


def delivery_figures(account: str | None = None) -> dict[str, Any]:
    """Funnel, times and failures of one account's messages (everyone's with None)."""
    outbound = [m for m in OUTBOUND if account in (None, account_of(m[0]))]
    sent = [m for m in outbound if m[1] is not None]
    delivered = [m for m in sent if m[2] is not None or m[3] is not None]
    read = [m for m in sent if m[3] is not None]
    failures: dict[tuple[int, str], int] = {}
    for m in outbound:
        if m[4] is not None:
            failures[m[4]] = failures.get(m[4], 0) + 1
    return {
        "funnel": {
            "sent": len(sent), "delivered": len(delivered), "read": len(read),
            "failed": sum(failures.values()),
            "delivered_rate": round(len(delivered) / len(sent), 4),
            "read_rate": round(len(read) / len(sent), 4),
            "read_of_delivered_rate": round(len(read) / len(delivered), 4),
        },
        "time_to_deliver": _latency([float(m[2]) for m in sent if m[2] is not None],
                                    DELIVER_BUCKETS[account]),
        "time_to_read": _latency([float(m[3]) for m in sent if m[3] is not None],
                                 READ_BUCKETS[account]),
        "failures": [
            {"error_code": code, "error_title": title, "messages": n}
            for (code, title), n in sorted(failures.items(), key=lambda f: (-f[1], f[0][0]))
        ],
    }


def undelivered_figures(now: datetime) -> dict[str, Any]:
    """Sent over an hour before `now`, neither delivered, read nor failed."""
    waiting = [(T0 + timedelta(seconds=m[1]), m[0]) for m in OUTBOUND
               if m[1] is not None and m[2] is None and m[3] is None and m[4] is None
               and T0 + timedelta(seconds=m[1]) < now - timedelta(hours=1)]
    return {"messages": len(waiting), "examples": [
        {"message_id": message_id, "account": account_of(message_id),
         "contact": "+919800000002", "sent_at": at.isoformat()}
        for at, message_id in sorted(waiting)[:5]]}


def expected_figures() -> dict[str, Any]:
    return {
        **delivery_figures(),
        "accounts": [{"account": account, **delivery_figures(account)}
                     for account in ("acme", "globex")],
        "pricing": EXPECTED_PRICING,
        "top_contacts": [{"contact": c, "messages": n} for c, n in INBOUND.items()],
    }


def expected_volume(events: Sequence[Event | OptOutEvent]) -> list[dict[str, Any]]:
    unique = {event.event_id: event for event in events}
    counts: dict[tuple[datetime, str], int] = {}
    for event in unique.values():
        at = event.occurred_at or event.received_at
        hour = at.replace(minute=0, second=0, microsecond=0)
        counts[(hour, event.type)] = counts.get((hour, event.type), 0) + 1
    return [{"hour": hour.isoformat(), "type": kind, "events": n}
            for (hour, kind), n in sorted(counts.items())]


async def write_lake(root: Path, events: Sequence[Event | OptOutEvent]) -> None:
    """The events as the lake sink writes them, rolled into Parquet files at once."""
    sink = LakeSink(root, roll_bytes=10**9, roll_interval_s=0.0, compact_min_files=1000)
    await sink.setup()
    await sink.write([SinkRecord("test", 0, n, event) for n, event in enumerate(events)])
    await sink.maintain()
    await sink.close()


async def test_lake_files_open_in_duckdb_and_stats_match_hand_figures(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
) -> None:
    events = fixture_events()
    unique = len({event.event_id for event in events})
    await produce(kafka_bootstrap, topic_prefix, events)
    lake_dir = tmp_path / "lake"
    sink = LakeSink(lake_dir, roll_bytes=10**9, roll_interval_s=0.5, compact_min_files=1000)
    async with running_driver(sink, fast_settings()):
        await wait_until(lambda: _lake_holds(lake_dir, unique), f"{unique} distinct events")

    files = sorted(lake_dir.glob("type=*/date=*/*.parquet"))
    assert {path.parent.parent.name for path in files} == {
        "type=message.text", "type=status.sent", "type=status.delivered", "type=status.read",
        "type=status.failed", "type=contact.optout"}
    assert {path.parent.name for path in files} == {"date=2025-03-01"}
    for path in files:  # each file is whole on its own
        assert duck(f"SELECT count(*) FROM '{path}'")[0][0] > 0

    result = subprocess.run(
        [sys.executable, "-m", "qikflow", "stats", "--json"],
        env={**os.environ, "QIKFLOW_LAKE_DIR": str(lake_dir)},
        capture_output=True, text=True, check=True,
    )
    stats = json.loads(result.stdout)
    expected = expected_figures()
    assert stats["events"] == unique
    assert stats["volume"] == expected_volume(events)
    for key, figures in expected.items():
        assert stats[key] == figures, key
    # Every sent message is over an hour old by now.
    assert {key: stats["undelivered"][key] for key in ("messages", "examples")} == \
        undelivered_figures(datetime.now(T0.tzinfo))

    tables = subprocess.run(
        [sys.executable, "-m", "qikflow", "stats"],
        env={**os.environ, "QIKFLOW_LAKE_DIR": str(lake_dir)},
        capture_output=True, text=True, check=True,
    ).stdout
    for heading in ("Delivery funnel", "By account", "No delivery report after 1 h",
                    "Pricing of 12 outbound messages", "Messages per latency bucket"):
        assert heading in tables
    assert "131026" in tables


async def _lake_holds(lake_dir: Path, expected: int) -> bool:
    if not list(lake_dir.glob("type=*/date=*/*.parquet")):
        return False
    rows = duck(
        f"SELECT count(DISTINCT event_id) FROM read_parquet('{lake_dir}/type=*/date=*/*.parquet')"
    )
    return bool(rows[0][0] == expected)


async def test_stats_since_counts_only_recent_events(tmp_path: Path) -> None:
    old = [text_message(f"old-{n}", at=T0) for n in range(3)]
    recent = [text_message(f"new-{n}", at=T0 + timedelta(hours=3)) for n in range(2)]
    await write_lake(tmp_path, old + recent)

    window = compute_stats(tmp_path, parse_duration("2h"), now=T0 + timedelta(hours=4))
    everything = compute_stats(tmp_path)
    assert (window.events, everything.events) == (2, 5)
    assert window.top_contacts == [{"contact": "+919800000001", "messages": 2}]


def test_stats_of_an_empty_lake_and_durations(tmp_path: Path) -> None:
    empty = subprocess.run(
        [sys.executable, "-m", "qikflow", "stats", "--json", "--since", "2h"],
        env={**os.environ, "QIKFLOW_LAKE_DIR": str(tmp_path / "no-lake")},
        capture_output=True, text=True, check=True,
    )
    assert json.loads(empty.stdout)["events"] == 0
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("7d") == timedelta(days=7)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


async def test_undelivered_counts_messages_sent_more_than_an_hour_before_the_end(
    tmp_path: Path,
) -> None:
    await write_lake(tmp_path, fixture_events())
    o6_sent = T0 + timedelta(seconds=300)
    for now in (o6_sent + timedelta(hours=1),  # exactly an hour: not yet
                o6_sent + timedelta(hours=1, microseconds=1), T0 + timedelta(hours=3)):
        stats = compute_stats(tmp_path, now=now)
        undelivered = stats.to_dict()["undelivered"]
        assert undelivered == {"after_s": 3600, "sent_before": (now - timedelta(hours=1))
                               .isoformat(), **undelivered_figures(now)}, now
    assert stats.undelivered.messages == 2  # o6 and o12; o7 and o11 failed, o10 was never sent
    # A window that starts after o6 (and o11) were sent knows only o12.
    window = compute_stats(tmp_path, timedelta(minutes=100), now=T0 + timedelta(hours=3))
    assert [m["message_id"] for m in window.undelivered.examples] == ["o12"]


def test_stats_json_of_an_empty_lake_has_every_figure(tmp_path: Path) -> None:
    stats = compute_stats(tmp_path / "no-lake", now=T0).to_dict()
    assert stats["funnel"]["sent"] == 0 and stats["funnel"]["delivered_rate"] is None
    assert stats["time_to_deliver"]["buckets"] == _buckets({})
    assert stats["accounts"] == [] and stats["undelivered"]["messages"] == 0
    assert stats["pricing"] == {"messages": 0, "billable": 0, "not_billable": 0,
                                "unstated": 0, "categories": []}
