"""`qikflow sink postgres|lake`, `qikflow db migrate`, `qikflow stats`."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Register this package's subcommands."""
    sink = subparsers.add_parser(
        "sink",
        help="write the per-type topics into PostgreSQL or the Parquet lake",
        description=(
            "Run one sink as its own consumer group (<prefix>-sink-<name>) until SIGTERM. "
            "Offsets are committed only after the store has the records."
        ),
    )
    sink.add_argument("name", choices=["postgres", "lake"])
    sink.add_argument("--metrics-port", type=int, default=None,
                      help="serve Prometheus metrics on this port")
    sink.set_defaults(handler=_sink)

    db = subparsers.add_parser("db", help="manage the PostgreSQL schema")
    db.add_argument("action", choices=["migrate"])
    db.set_defaults(handler=_db)

    stats = subparsers.add_parser(
        "stats", help="volumes, delivery funnel, latencies and failures from the lake",
        description="Query the Parquet lake (QIKFLOW_LAKE_DIR) with DuckDB.",
    )
    stats.add_argument("--since", metavar="DURATION", default=None,
                       help="only events of the last DURATION, e.g. 15m, 24h, 7d")
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    stats.set_defaults(handler=_stats)


def _sink(args: argparse.Namespace) -> int:
    import asyncio

    from sinks.runner import DatabaseUrlMissingError, run_sink

    try:
        asyncio.run(run_sink(args.name, args.metrics_port))
    except DatabaseUrlMissingError as error:
        print(f"qikflow sink {args.name}: {error}", file=sys.stderr)
        return 2
    return 0


def _db(args: argparse.Namespace) -> int:
    import asyncio

    import asyncpg

    from sinks.migrate import MigrationError, migrate
    from sinks.runner import DatabaseUrlMissingError, database_url
    from sinks.settings import SinkSettings

    try:
        url = database_url(SinkSettings())
    except DatabaseUrlMissingError as error:
        print(f"qikflow db migrate: {error}", file=sys.stderr)
        return 2

    async def run() -> int:
        connection = await asyncpg.connect(url)
        try:
            applied = await migrate(connection)
        finally:
            await connection.close()
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
        print(f"migrations applied: {names}")
        return 0

    try:
        return asyncio.run(run())
    except (MigrationError, OSError, asyncpg.PostgresError) as error:
        print(f"qikflow db migrate: {error}", file=sys.stderr)
        return 1


def _stats(args: argparse.Namespace) -> int:
    import orjson

    from sinks._stats_text import render
    from sinks.settings import SinkSettings
    from sinks.stats import compute_stats, parse_duration

    try:
        since = parse_duration(args.since) if args.since else None
    except ValueError as error:
        print(f"qikflow stats: {error}", file=sys.stderr)
        return 2
    stats = compute_stats(SinkSettings().lake_dir, since)
    if args.json:
        sys.stdout.write(orjson.dumps(stats.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render(stats))
    return 0
