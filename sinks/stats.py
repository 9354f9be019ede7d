"""`qikflow stats`: volumes, the delivery funnel, latencies and failures, from the lake.

Every figure counts each `event_id` once (the lake is at-least-once). Definitions:

- volume: events per hour of their provider time (receipt time when it has none), by type;
- funnel: outbound messages with a status event in the window, by the highest status they
  reached (read counts as delivered and sent); rates are shares of `sent`;
- time to deliver / to read: from the earliest known sent time to the earliest known
  delivered / read time of the same message (provider timestamps), in seconds;
- failures: messages with a `failed` status, by error code;
- top contacts: incoming messages per customer number.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TOP_CONTACTS = 10


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `24h`, `7d`, `2w`."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 7d, 2w)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@dataclass
class Latency:
    count: int = 0
    p50_s: float | None = None
    p90_s: float | None = None
    p99_s: float | None = None


@dataclass
class Stats:
    since: str | None
    events: int = 0
    volume: list[dict[str, Any]] = field(default_factory=list)
    funnel: dict[str, Any] = field(default_factory=dict)
    time_to_deliver: Latency = field(default_factory=Latency)
    time_to_read: Latency = field(default_factory=Latency)
    failures: list[dict[str, Any]] = field(default_factory=list)
    top_contacts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_PER_MESSAGE = """
CREATE TEMP VIEW per_message AS
SELECT message_id,
    max(CASE status WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 WHEN 'sent' THEN 1 ELSE 0 END)
        AS rank,
    bool_or(status = 'failed') AS failed,
    least(min(sent_at), min(CASE WHEN status = 'sent' THEN occurred_at END)) AS sent_at,
    least(min(delivered_at), min(CASE WHEN status = 'delivered' THEN occurred_at END))
        AS delivered_at,
    least(min(read_at), min(CASE WHEN status = 'read' THEN occurred_at END)) AS read_at
FROM events WHERE kind = 'status' AND status IN ('sent', 'delivered', 'read', 'failed')
GROUP BY message_id
"""


def compute_stats(lake_dir: Path, since: timedelta | None = None,
                  now: datetime | None = None) -> Stats:
    """Query the lake's Parquet files; an empty or missing lake gives zero figures."""
    start = (now or datetime.now(UTC)) - since if since is not None else None
    stats = Stats(since=start.isoformat() if start else None)
    files = list(lake_dir.glob("type=*/date=*/*.parquet"))
    if not files:
        return stats
    db = duckdb.connect()
    try:
        db.execute("SET TimeZone = 'UTC'")
        glob = str(lake_dir / "type=*" / "date=*" / "*.parquet").replace("'", "''")
        window = ""
        if start is not None:
            # Received on or after the start's date: prunes whole date folders.
            window = (f"WHERE date >= DATE '{start.date().isoformat()}' AND "
                      f"coalesce(occurred_at, received_at) >= TIMESTAMPTZ '{start.isoformat()}'")
        db.execute(
            "CREATE TEMP VIEW events AS SELECT * FROM read_parquet("
            f"'{glob}', hive_partitioning = true, union_by_name = true) {window} "
            "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at) = 1"
        )
        db.execute(_PER_MESSAGE)
        _fill(db, stats)
    finally:
        db.close()
    return stats


def _fill(db: duckdb.DuckDBPyConnection, stats: Stats) -> None:
    stats.events = _scalar(db, "SELECT count(*) FROM events")
    stats.volume = [
        {"hour": hour.isoformat(), "type": kind, "events": count}
        for hour, kind, count in db.execute(
            "SELECT date_trunc('hour', coalesce(occurred_at, received_at)) AS hour, type, "
            "count(*) FROM events GROUP BY ALL ORDER BY hour, type"
        ).fetchall()
    ]
    sent, delivered, read, failed = db.execute(
        "SELECT count(*) FILTER (rank >= 1), count(*) FILTER (rank >= 2), "
        "count(*) FILTER (rank >= 3), count(*) FILTER (failed) FROM per_message"
    ).fetchone() or (0, 0, 0, 0)
    stats.funnel = {
        "sent": sent, "delivered": delivered, "read": read, "failed": failed,
        "delivered_rate": _rate(delivered, sent), "read_rate": _rate(read, sent),
        "read_of_delivered_rate": _rate(read, delivered),
    }
    stats.time_to_deliver = _latency(db, "delivered_at")
    stats.time_to_read = _latency(db, "read_at")
    stats.failures = [
        {"error_code": code, "error_title": title, "messages": count}
        for code, title, count in db.execute(
            "SELECT error_code, min(error_title), count(DISTINCT message_id) AS n FROM events "
            "WHERE status = 'failed' GROUP BY error_code ORDER BY n DESC, error_code NULLS LAST"
        ).fetchall()
    ]
    stats.top_contacts = [
        {"contact": contact, "messages": count}
        for contact, count in db.execute(
            "SELECT contact, count(*) AS n FROM events WHERE kind = 'message' "
            f"GROUP BY contact ORDER BY n DESC, contact LIMIT {TOP_CONTACTS}"
        ).fetchall()
    ]


def _latency(db: duckdb.DuckDBPyConnection, column: str) -> Latency:
    row = db.execute(
        f"SELECT count(*), quantile_cont(s, [0.5, 0.9, 0.99]) FROM ("
        f"SELECT epoch({column} - sent_at) AS s FROM per_message "
        f"WHERE {column} IS NOT NULL AND sent_at IS NOT NULL AND {column} >= sent_at)"
    ).fetchone()
    if row is None or not row[0]:
        return Latency()
    p50, p90, p99 = (round(float(value), 3) for value in row[1])
    return Latency(count=int(row[0]), p50_s=p50, p90_s=p90, p99_s=p99)


def _scalar(db: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = db.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
