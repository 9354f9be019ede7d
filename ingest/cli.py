"""`qikflow ingest`: the webhook receiver (and `qikflow spool`, its spool and quarantine)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ingest import spool_cli

if TYPE_CHECKING:
    from pydantic import ValidationError


def register(subparsers: Any) -> None:
    ingest = subparsers.add_parser(
        "ingest",
        help="receive Qikchat webhooks and store them durably in Kafka",
        description=(
            "Serve POST /webhooks/qikchat[/{account}]. Settings come from QIKFLOW_* "
            "variables (see README): credentials, limits, Kafka, spool."
        ),
    )
    ingest.add_argument("--host", default="0.0.0.0", help="bind address (default 0.0.0.0)")
    ingest.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    ingest.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ingest.set_defaults(handler=_ingest)
    spool_cli.register(subparsers)


def _ingest(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ingest.auth import Credentials
    from ingest.errors import IngestConfigError
    from ingest.server import serve
    from ingest.settings import IngestSettings

    os.environ["QIKFLOW_LOG_LEVEL"] = args.log_level
    try:
        settings = IngestSettings()
    except ValidationError as error:
        print(f"qikflow ingest: invalid settings: {_problems(error)}", file=sys.stderr)
        return 2
    try:
        # Fail here, with one clear line, rather than inside every worker.
        Credentials.from_settings(settings)
    except IngestConfigError as error:
        print(f"qikflow ingest: {error}", file=sys.stderr)
        return 2
    serve(args.host, args.port, args.workers, forwarded_allow_ips=settings.forwarded_allow_ips,
          log_level=args.log_level)
    return 0


def _problems(error: ValidationError) -> str:
    """A pydantic ValidationError as `QIKFLOW_NAME: what is wrong; ...`."""
    problems = []
    for problem in error.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        names = "_".join(str(part) for part in problem["loc"]).upper()
        problems.append(f"QIKFLOW_{names}: {message}" if names else message)
    return "; ".join(problems)
