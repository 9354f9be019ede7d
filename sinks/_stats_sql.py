"""The DuckDB queries behind `sinks/stats.py`, returning plain values.

Figures for everyone and per account come from one query each: `GROUPING SETS ((account),
())` gives a row per account plus the total, told apart by `grouping(account)` (results
are keyed by the account, `None` for everyone).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

LAKE_FILES = "type=*/date=*/*.parquet"

_PER_MESSAGE = """
CREATE TEMP VIEW per_message AS
SELECT message_id, min(account) AS account, min(contact) AS contact,
    max(rank) AS rank,
    bool_or(status = 'failed') AS failed,
    least(min(sent_at), min(CASE WHEN status = 'sent' THEN occurred_at END)) AS sent_at,
    least(min(delivered_at), min(CASE WHEN status = 'delivered' THEN occurred_at END))
        AS delivered_at,
    least(min(read_at), min(CASE WHEN status = 'read' THEN occurred_at END)) AS read_at,
    arg_max(struct_pack(category := stated_category, billable := stated_billable),
            [rank, epoch_us(coalesce(occurred_at, received_at))])
        FILTER (WHERE stated_category IS NOT NULL OR stated_billable IS NOT NULL) AS pricing
FROM (
    SELECT *,
        CASE status WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 WHEN 'sent' THEN 1 ELSE 0 END
            AS rank,
        coalesce(json_extract_string(content, '$.pricing.category'),
                 json_extract_string(content, '$.pricing_category')) AS stated_category,
        CASE json_extract_string(content, '$.pricing.billable')
            WHEN 'true' THEN true WHEN 'false' THEN false END AS stated_billable
    FROM events WHERE kind = 'status' AND status IN ('sent', 'delivered', 'read', 'failed')
)
GROUP BY message_id
"""
_BY_ACCOUNT = "GROUP BY GROUPING SETS ((account), ())"


def create_views(db: duckdb.DuckDBPyConnection, lake_dir: Path, start: datetime | None) -> None:
    """`events`: one row per event id in the window; `per_message`: one per outbound message."""
    glob = str(lake_dir / LAKE_FILES).replace("'", "''")
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


def scalar(db: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = db.execute(sql).fetchone()
    return int(row[0]) if row else 0


def volume(db: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return [
        {"hour": hour.isoformat(), "type": kind, "events": count}
        for hour, kind, count in db.execute(
            "SELECT date_trunc('hour', coalesce(occurred_at, received_at)) AS hour, type, "
            "count(*) FROM events GROUP BY ALL ORDER BY hour, type"
        ).fetchall()
    ]


def funnel_of(sent: int, delivered: int, read: int, failed: int) -> dict[str, Any]:
    return {
        "sent": sent, "delivered": delivered, "read": read, "failed": failed,
        "delivered_rate": _rate(delivered, sent), "read_rate": _rate(read, sent),
        "read_of_delivered_rate": _rate(read, delivered),
    }


def funnels(db: duckdb.DuckDBPyConnection) -> dict[str | None, dict[str, Any]]:
    rows = db.execute(
        "SELECT account, grouping(account), count(*) FILTER (rank >= 1), "
        "count(*) FILTER (rank >= 2), count(*) FILTER (rank >= 3), count(*) FILTER (failed) "
        f"FROM per_message {_BY_ACCOUNT}"
    ).fetchall()
    return {None if everyone else account: funnel_of(*counts)
            for account, everyone, *counts in rows}


def latencies(db: duckdb.DuckDBPyConnection, column: str,
              bucket_starts_s: list[float]) -> dict[str | None, dict[str, Any]]:
    """Count, p50/p90/p99 (linear interpolation) and bucket counts of `column - sent_at`."""
    bounds = [*bucket_starts_s[1:], None]
    buckets = ", ".join(
        f"count(*) FILTER (s >= {low}" + (f" AND s < {high})" if high is not None else ")")
        for low, high in zip(bucket_starts_s, bounds, strict=True)
    )
    rows = db.execute(
        f"SELECT account, grouping(account), count(*), quantile_cont(s, [0.5, 0.9, 0.99]), "
        f"[{buckets}] FROM (SELECT account, epoch({column} - sent_at) AS s FROM per_message "
        f"WHERE {column} IS NOT NULL AND sent_at IS NOT NULL AND {column} >= sent_at) "
        f"{_BY_ACCOUNT}"
    ).fetchall()
    result: dict[str | None, dict[str, Any]] = {}
    for account, everyone, count, quantiles, counts in rows:
        p50, p90, p99 = (round(float(value), 3) for value in quantiles or [0, 0, 0])
        result[None if everyone else account] = {
            "count": int(count), "p50_s": p50, "p90_s": p90, "p99_s": p99, "buckets": counts,
        }
    return result


def failures(db: duckdb.DuckDBPyConnection) -> dict[str | None, list[dict[str, Any]]]:
    result: dict[str | None, list[dict[str, Any]]] = {}
    for account, everyone, code, title, count in db.execute(
        "SELECT account, grouping(account), error_code, min(error_title), "
        "count(DISTINCT message_id) AS n FROM events WHERE status = 'failed' "
        "GROUP BY GROUPING SETS ((account, error_code), (error_code)) "
        "ORDER BY n DESC, error_code NULLS LAST"
    ).fetchall():
        result.setdefault(None if everyone else account, []).append(
            {"error_code": code, "error_title": title, "messages": count})
    return result


_UNDELIVERED = ("FROM per_message WHERE rank < 2 AND NOT failed AND delivered_at IS NULL "
                "AND read_at IS NULL AND sent_at < ?")


def undelivered(db: duckdb.DuckDBPyConnection, cutoff: datetime,
                examples: int) -> tuple[int, list[dict[str, Any]]]:
    """Messages sent before `cutoff` with no delivered or read report and no failure."""
    row = db.execute(f"SELECT count(*) {_UNDELIVERED}", [cutoff]).fetchone()
    rows = db.execute(
        f"SELECT message_id, account, contact, sent_at {_UNDELIVERED} "
        f"ORDER BY sent_at, message_id LIMIT {int(examples)}", [cutoff]
    ).fetchall()
    return int(row[0]) if row else 0, [
        {"message_id": message_id, "account": account, "contact": contact,
         "sent_at": sent_at.isoformat()}
        for message_id, account, contact, sent_at in rows
    ]


def pricing(db: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Each outbound message once, by the pricing its most advanced status states."""
    categories = [
        {"category": category, "messages": count, "billable": billable,
         "not_billable": not_billable}
        for category, count, billable, not_billable in db.execute(
            "SELECT pricing.category AS category, count(*) AS n, "
            "count(*) FILTER (pricing.billable), count(*) FILTER (NOT pricing.billable) "
            "FROM per_message GROUP BY pricing.category "
            "ORDER BY category IS NULL, n DESC, category"
        ).fetchall()
    ]
    messages = sum(row["messages"] for row in categories)
    billable = sum(row["billable"] for row in categories)
    not_billable = sum(row["not_billable"] for row in categories)
    return {"messages": messages, "billable": billable, "not_billable": not_billable,
            "unstated": messages - billable - not_billable, "categories": categories}


def top_contacts(db: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    return [
        {"contact": contact, "messages": count}
        for contact, count in db.execute(
            "SELECT contact, count(*) AS n FROM events WHERE kind = 'message' "
            f"GROUP BY contact ORDER BY n DESC, contact LIMIT {int(limit)}"
        ).fetchall()
    ]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
