"""`qikflow simulate`: send realistic Qikchat traffic to ingest and, with --verify, reconcile."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Register the `simulate` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="send realistic Qikchat webhook traffic; --verify reconciles every stage",
        description=(
            "POST generated Qikchat webhooks (every message type, outbound status lifecycles, "
            "failures, ~1%% resends, out-of-order statuses, malformed bodies) at a fixed rate. "
            "With --verify, check that every acknowledged body reached Kafka, the per-type "
            "topics, PostgreSQL and the lake; exit 1 on any loss or mismatch."
        ),
    )
    parser.add_argument("--url", required=True,
                        help="ingest URL; `/webhooks/qikchat` is added when it has no path")
    parser.add_argument("--user", default=os.environ.get("QIKFLOW_SIMULATE_USER"),
                        help="Basic Auth user (env QIKFLOW_SIMULATE_USER)")
    parser.add_argument("--password", default=os.environ.get("QIKFLOW_SIMULATE_PASSWORD"),
                        help="Basic Auth password (env QIKFLOW_SIMULATE_PASSWORD, which keeps "
                             "it out of the process list)")
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks per second (50)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of traffic (10)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed; the same seed gives the same traffic (default: new)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="requests in flight at most (64)")
    parser.add_argument("--account", action="append", default=None,
                        help="post to /webhooks/qikchat/<account>; repeat to spread traffic")
    parser.add_argument("--verify", action="store_true",
                        help="after sending, reconcile every stage against the ground truth")
    parser.add_argument("--prefix", default=None,
                        help="topic prefix (default: env QIKFLOW_TOPIC_PREFIX or qikchat)")
    parser.add_argument("--database-url", default=os.environ.get("QIKFLOW_DATABASE_URL"),
                        help="PostgreSQL to check (env QIKFLOW_DATABASE_URL; unset: not checked)")
    parser.add_argument("--lake-dir", type=Path, default=_env_path("QIKFLOW_LAKE_DIR"),
                        help="Parquet lake to check (env QIKFLOW_LAKE_DIR; unset: not checked)")
    parser.add_argument("--allow-crash-copies", action="store_true",
                        help="a worker was crashed on purpose during the run: report copies "
                             "of routed events (same event_id) without failing")
    parser.add_argument("--verify-timeout", type=float, default=120.0,
                        help="seconds to wait for every stage to converge (120)")
    parser.add_argument("--json-report", type=Path, default=None,
                        help="also write the send statistics and the reconciliation as JSON")
    parser.set_defaults(handler=_simulate)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _simulate(args: argparse.Namespace) -> int:
    import asyncio

    from qikflow._logging import quiet_client_logs

    quiet_client_logs()
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    import secrets
    from collections import Counter
    from datetime import UTC, datetime

    import orjson

    from qikflow.config import KafkaSettings
    from qikflow.simulate._progress import Progress
    from qikflow.simulate.generator import TrafficGenerator
    from qikflow.simulate.reconcile import ReconcileOptions, reconcile
    from qikflow.simulate.sender import WebhookSender

    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    start = datetime.now(UTC)
    generator = TrafficGenerator(seed=seed, rate_per_s=args.rate, duration_s=args.duration,
                                 accounts=args.account or (None,), start=start)
    print(f"simulate: seed {seed}, {generator.total} webhooks at {args.rate:g}/s "
          f"to {args.url}", file=sys.stderr)
    sender = WebhookSender(args.url, user=args.user, password=args.password,
                           concurrency=args.concurrency, progress=Progress(generator.total))
    report = await sender.run(generator)
    print(report.summary())
    document: dict[str, Any] = {
        "seed": seed, "start": start.isoformat(), "rate_per_s": args.rate,
        "duration_s": args.duration,
        "kinds": Counter(record.kind for record in generator.truth.records),
        "event_types": generator.truth.type_counts(),
        "planned": generator.total, "sent": len(report.results), "acked": report.ok,
        "status_counts": {str(k): v for k, v in report.status_counts().items()},
        "latency_s": report.latency_quantiles(), "elapsed_s": report.elapsed_s,
    }
    ok = report.not_ok == 0
    if args.verify:
        kafka = KafkaSettings()
        if args.prefix:
            kafka = kafka.model_copy(update={"topic_prefix": args.prefix})
        options = ReconcileOptions(
            kafka=kafka, database_url=args.database_url, lake_dir=args.lake_dir,
            timeout_s=args.verify_timeout,
            routed_copies_allowed=args.allow_crash_copies,
            # Skip older traffic in shared topics; the margin covers clock skew.
            since_ms=int(start.timestamp() * 1000) - 60_000,
        )
        print(f"verify: waiting up to {args.verify_timeout:g}s for every stage "
              f"(topics {kafka.topic_prefix + '.*'})", file=sys.stderr)
        result = await reconcile(generator.truth, report, options)
        print(result.table())
        document["verify"] = result.to_dict()
        ok = ok and result.ok
    if args.json_report is not None:
        args.json_report.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2,
                                                  default=_jsonable))
    return 0 if ok else 1


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
