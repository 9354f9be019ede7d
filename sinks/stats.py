"""`qikflow stats` and `qikflow report`: the figures of the lake, as one `Stats` object.

Every figure counts each `event_id` once (the lake is at-least-once). The window runs from
`--since` ago (or the first event) to now. Definitions:

- volume: events per hour of their provider time (receipt time when it has none), by type;
- funnel: outbound messages with a status event in the window, by the highest status they
  reached (read counts as delivered and sent); rates are shares of `sent`;
- time to deliver / to read: from the earliest known sent time to the earliest known
  delivered / read time of the same message (provider timestamps), in seconds, with the
  count of messages in each bucket of `LATENCY_BUCKETS`;
- failures: messages with a `failed` status, by error code;
- accounts: the funnel, both times and the failures again for each account (the `account`
  of the message's statuses) that has outbound messages in the window;
- undelivered: messages sent more than an hour before the end of the window with no
  delivered or read report; a message that `failed` has its report and is not counted;
- pricing: each outbound message once, by pricing category and billable or not. Pricing is
  read from the lake's JSON `content` (`pricing.category`, or version 1's
  `pricing_category`; `pricing.billable`) with DuckDB's JSON functions: simpler than new
  lake columns, as no staging file or older Parquet file needs widening. When its statuses
  disagree, the most advanced status that states pricing decides (read > delivered > sent >
  failed, then the latest);
- top contacts: incoming messages per customer number.

The queries live in `sinks/_stats_sql.py`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from sinks import _stats_sql as sql

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TOP_CONTACTS = 10
UNDELIVERED_AFTER = timedelta(hours=1)
UNDELIVERED_EXAMPLES = 5
# (label, from seconds, to seconds): a bucket holds from <= s < to.
LATENCY_BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("<1s", 0, 1), ("1-5s", 1, 5), ("5-30s", 5, 30), ("30s-2m", 30, 120),
    ("2-10m", 120, 600), ("10m-1h", 600, 3600), (">1h", 3600, None),
)


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `24h`, `7d`, `2w`."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 7d, 2w)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def latency_buckets(counts: list[int] | None = None) -> list[dict[str, Any]]:
    """The buckets of `LATENCY_BUCKETS` with their message counts (zero when none given)."""
    counts = counts or [0] * len(LATENCY_BUCKETS)
    return [{"bucket": label, "from_s": low, "to_s": high, "messages": count}
            for (label, low, high), count in zip(LATENCY_BUCKETS, counts, strict=True)]


@dataclass
class Latency:
    count: int = 0
    p50_s: float | None = None
    p90_s: float | None = None
    p99_s: float | None = None
    buckets: list[dict[str, Any]] = field(default_factory=latency_buckets)


@dataclass
class AccountStats:
    """The delivery figures of one account."""

    account: str
    funnel: dict[str, Any] = field(default_factory=dict)
    time_to_deliver: Latency = field(default_factory=Latency)
    time_to_read: Latency = field(default_factory=Latency)
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Undelivered:
    """Messages sent before `sent_before` (an hour before the window's end) and neither
    delivered, read nor failed; `examples` are the longest waiting."""

    after_s: int = int(UNDELIVERED_AFTER.total_seconds())
    sent_before: str | None = None
    messages: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Pricing:
    """Outbound messages by pricing; `unstated`: no status said whether it is billable."""

    messages: int = 0
    billable: int = 0
    not_billable: int = 0
    unstated: int = 0
    categories: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Stats:
    since: str | None
    until: str | None = None
    events: int = 0
    volume: list[dict[str, Any]] = field(default_factory=list)
    funnel: dict[str, Any] = field(default_factory=dict)
    time_to_deliver: Latency = field(default_factory=Latency)
    time_to_read: Latency = field(default_factory=Latency)
    failures: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[AccountStats] = field(default_factory=list)
    undelivered: Undelivered = field(default_factory=Undelivered)
    pricing: Pricing = field(default_factory=Pricing)
    top_contacts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_stats(lake_dir: Path, since: timedelta | None = None,
                  now: datetime | None = None) -> Stats:
    """Query the lake's Parquet files; an empty or missing lake gives zero figures."""
    end = now or datetime.now(UTC)
    start = end - since if since is not None else None
    cutoff = end - UNDELIVERED_AFTER
    stats = Stats(since=start.isoformat() if start else None, until=end.isoformat(),
                  funnel=sql.funnel_of(0, 0, 0, 0),
                  undelivered=Undelivered(sent_before=cutoff.isoformat()))
    if not list(lake_dir.glob(sql.LAKE_FILES)):
        return stats
    db = duckdb.connect()
    try:
        db.execute("SET TimeZone = 'UTC'")
        sql.create_views(db, lake_dir, start)
        _fill(db, stats, cutoff)
    finally:
        db.close()
    return stats


def _fill(db: duckdb.DuckDBPyConnection, stats: Stats, cutoff: datetime) -> None:
    stats.events = sql.scalar(db, "SELECT count(*) FROM events")
    stats.volume = sql.volume(db)
    funnels = sql.funnels(db)
    delivers = sql.latencies(db, "delivered_at", [low for _, low, _ in LATENCY_BUCKETS])
    reads = sql.latencies(db, "read_at", [low for _, low, _ in LATENCY_BUCKETS])
    failures = sql.failures(db)
    stats.funnel = funnels.pop(None, stats.funnel)
    stats.time_to_deliver = _latency(delivers.pop(None, None))
    stats.time_to_read = _latency(reads.pop(None, None))
    stats.failures = failures.pop(None, [])
    stats.accounts = [
        AccountStats(account=account, funnel=funnel,
                     time_to_deliver=_latency(delivers.get(account)),
                     time_to_read=_latency(reads.get(account)),
                     failures=failures.get(account, []))
        for account, funnel in sorted(funnels.items(), key=lambda item: item[0] or "")
        if account is not None
    ]
    count, examples = sql.undelivered(db, cutoff, UNDELIVERED_EXAMPLES)
    stats.undelivered.messages, stats.undelivered.examples = count, examples
    stats.pricing = Pricing(**sql.pricing(db))
    stats.top_contacts = sql.top_contacts(db, TOP_CONTACTS)


def _latency(figures: dict[str, Any] | None) -> Latency:
    if not figures or not figures["count"]:
        return Latency()
    return Latency(count=figures["count"], p50_s=figures["p50_s"], p90_s=figures["p90_s"],
                   p99_s=figures["p99_s"], buckets=latency_buckets(figures["buckets"]))
