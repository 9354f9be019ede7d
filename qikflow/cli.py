"""The `qikflow` command: one entry point, one subcommand module per package."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from qikflow._logging import configure_logging
from qikflow._parent import ParentGoneError, watch_parent

# Each module defines `register(subparsers)` and keeps heavy imports inside its handlers,
# so `qikflow --help` stays fast.
COMMAND_MODULES = (
    "qikflow.local.cli",
    "ingest.cli",
    "streams.cli",
    "sinks.cli",
    "qikflow.simulate.cli",
    "qikflow.tail",
    "qikflow.operations.cli",
    "qikflow.console.cli",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qikflow",
        description="Durable Qikchat WhatsApp webhook pipeline: ingest, streams, sinks.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("QIKFLOW_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (env QIKFLOW_LOG_LEVEL; default INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        # Started by a qikflow supervisor: stop when it dies, even by SIGKILL.
        watch_parent()
    except ParentGoneError as error:
        print(f"qikflow {args.command}: {error}", file=sys.stderr)
        return 1
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
