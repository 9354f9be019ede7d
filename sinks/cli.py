"""`qikflow sink postgres|lake`, `qikflow db migrate`, `qikflow stats`, `qikflow report`."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
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
        "stats", help="volumes, delivery funnel, latencies, failures and pricing from the lake",
        description="Query the Parquet lake (QIKFLOW_LAKE_DIR) with DuckDB.",
    )
    _lake_options(stats)
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    stats.set_defaults(handler=_stats)

    report = subparsers.add_parser(
        "report", help="the stats as a self-contained HTML page with charts",
        description=("Query the Parquet lake (QIKFLOW_LAKE_DIR) with DuckDB and write one HTML "
                     "file (inline CSS and SVG, no scripts, opens without a network)."),
    )
    _lake_options(report)
    report.add_argument("--out", metavar="FILE", type=Path, default=Path("report.html"),
                        help="the HTML file to write (default: report.html; replaced when it "
                        "exists)")
    report.set_defaults(handler=_report)


def _lake_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="DURATION", default=None,
                        help="only events of the last DURATION, e.g. 15m, 24h, 7d")
    parser.add_argument("--lake", metavar="DIR", type=Path, default=None,
                        help="the lake's folder (default: QIKFLOW_LAKE_DIR)")


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


def _window(command: str, args: argparse.Namespace) -> tuple[Path, timedelta | None] | None:
    """The lake folder and the `--since` duration; None (after saying why) when invalid."""
    from sinks.settings import SinkSettings
    from sinks.stats import parse_duration

    try:
        since = parse_duration(args.since) if args.since else None
    except ValueError as error:
        print(f"qikflow {command}: {error}", file=sys.stderr)
        return None
    return args.lake or SinkSettings().lake_dir, since


def _stats(args: argparse.Namespace) -> int:
    import orjson

    from sinks._stats_text import render
    from sinks.stats import compute_stats

    window = _window("stats", args)
    if window is None:
        return 2
    stats = compute_stats(*window)
    if args.json:
        sys.stdout.write(orjson.dumps(stats.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render(stats))
    return 0


def _report(args: argparse.Namespace) -> int:
    from sinks.report import write_report
    from sinks.stats import compute_stats

    window = _window("report", args)
    if window is None:
        return 2
    stats = compute_stats(*window)
    try:
        write_report(stats, args.out)
    except OSError as error:
        print(f"qikflow report: cannot write {args.out}: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({stats.events} events, "
          f"{'since ' + stats.since if stats.since else 'all time'})")
    return 0
