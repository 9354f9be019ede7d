"""From the topics into the lake, and `qikflow stats` against figures computed by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sinks.base import SinkRecord
from sinks.lake import LakeSink
from sinks.stats import compute_stats, parse_duration
from streams.events import Event, OptOutEvent
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
]
INBOUND = {"+919800000001": 6, "+919800000002": 3, "+919800000003": 1}


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
        events += reversed(lifecycle)
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


def expected_figures() -> dict[str, Any]:
    sent = [m for m in OUTBOUND if m[1] is not None]
    delivered = [m for m in sent if m[2] is not None or m[3] is not None]
    read = [m for m in sent if m[3] is not None]
    deliver_s = [float(m[2]) for m in sent if m[2] is not None]
    read_s = [float(m[3]) for m in sent if m[3] is not None]
    return {
        "funnel": {
            "sent": len(sent), "delivered": len(delivered), "read": len(read),
            "failed": sum(1 for m in OUTBOUND if m[4] is not None),
            "delivered_rate": round(len(delivered) / len(sent), 4),
            "read_rate": round(len(read) / len(sent), 4),
            "read_of_delivered_rate": round(len(read) / len(delivered), 4),
        },
        "time_to_deliver": {
            "count": len(deliver_s),
            **{f"p{p}_s": round(quantile(deliver_s, p / 100), 3) for p in (50, 90, 99)},
        },
        "time_to_read": {
            "count": len(read_s),
            **{f"p{p}_s": round(quantile(read_s, p / 100), 3) for p in (50, 90, 99)},
        },
        "failures": [
            {"error_code": 131026, "error_title": "Message undeliverable", "messages": 2},
            {"error_code": 131047, "error_title": "Re-engagement message", "messages": 1},
        ],
        "top_contacts": [{"contact": c, "messages": n} for c, n in INBOUND.items()],
    }


def expected_volume(events: list[Event | OptOutEvent]) -> list[dict[str, Any]]:
    unique = {event.event_id: event for event in events}
    counts: dict[tuple[datetime, str], int] = {}
    for event in unique.values():
        at = event.occurred_at or event.received_at
        hour = at.replace(minute=0, second=0, microsecond=0)
        counts[(hour, event.type)] = counts.get((hour, event.type), 0) + 1
    return [{"hour": hour.isoformat(), "type": kind, "events": n}
            for (hour, kind), n in sorted(counts.items())]


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
    for key in ("funnel", "time_to_deliver", "time_to_read", "failures", "top_contacts"):
        assert stats[key] == expected[key], key

    tables = subprocess.run(
        [sys.executable, "-m", "qikflow", "stats"],
        env={**os.environ, "QIKFLOW_LAKE_DIR": str(lake_dir)},
        capture_output=True, text=True, check=True,
    ).stdout
    assert "Delivery funnel" in tables
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
    sink = LakeSink(tmp_path, roll_bytes=10**9, roll_interval_s=0.0, compact_min_files=1000)
    await sink.setup()
    await sink.write([SinkRecord("test", 0, n, event) for n, event in enumerate(old + recent)])
    await sink.maintain()
    await sink.close()

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
