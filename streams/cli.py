"""`qikflow worker`: the Faust stream worker that routes `<prefix>.raw`."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Register this package's subcommands."""
    worker = subparsers.add_parser(
        "worker",
        help="route <prefix>.raw to the per-type topics (Faust stream worker)",
        description=(
            "Consume <prefix>.raw, drop duplicate events, and write each event to "
            "<prefix>.message.<type> or <prefix>.status.<status>; run the extension agents. "
            "Workers on any number of machines share the partitions through one consumer "
            "group. Settings: QIKFLOW_KAFKA_*, QIKFLOW_TOPIC_PREFIX, QIKFLOW_STREAMS_*."
        ),
    )
    worker.add_argument(
        "--workers", type=int, default=1, help="worker processes to run and supervise (default 1)"
    )
    # The supervisor starts each child with its index: it picks the web port and data dir.
    worker.add_argument("--index", type=int, default=None, help=argparse.SUPPRESS)
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker, supervise

    if args.workers < 1:
        raise SystemExit("qikflow worker: --workers must be at least 1")
    if args.index is None and args.workers > 1:
        return supervise(args.workers, args.log_level)
    return run_worker(args.index or 0, args.log_level)
