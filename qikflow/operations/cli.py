"""`qikflow trace`, `qikflow redrive`, `qikflow replay`, `qikflow window`: the operator actions
on the command line (the console calls the same functions)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from typing import Any

from qikflow.operations import SOURCES

# Exit statuses: 1 the action failed or stopped part way, 2 the input was wrong.
BAD_INPUT = 2


def register(subparsers: Any) -> None:
    trace = subparsers.add_parser(
        "trace", help="every place one webhook went: raw record, events, dead letters, rows",
        description="Trace a receipt id (the ingest's answer) or a message id.")
    trace.add_argument("id", help="receipt id or message id")
    trace.set_defaults(handler=_trace)

    redrive = subparsers.add_parser(
        "redrive", help="send dead letters back into the pipeline, to be handled again",
        description=(
            "Send the dead letters of one source that match the filter back: webhook bodies "
            "to <prefix>.raw, events a later stage failed on to their topic. Written to the "
            "audit trail (QIKFLOW_CONSOLE_AUDIT_FILE). See docs/console.md."))
    redrive.add_argument("--from", dest="source", required=True, choices=SOURCES)
    redrive.add_argument("--reason", default="", help="part of the reason, any case")
    redrive.add_argument("--type", default="",
                         help="event type or body `event`, a shell pattern (message.*)")
    redrive.add_argument("--account", default="", help="account label, exactly")
    redrive.add_argument("--since", default=None, help="dead-lettered at or after (2h, ISO)")
    redrive.add_argument("--until", default=None, help="dead-lettered at or before")
    redrive.add_argument("--dry-run", action="store_true", help="count, send nothing")
    redrive.set_defaults(handler=_redrive)

    window = subparsers.add_parser(
        "window", help="is a contact's 24-hour customer-service window open, until when",
        description=(
            "Read the contact's window from PostgreSQL (the postgres sink keeps it). Exit "
            "status: 0 open, 3 closed or no incoming message on record, 1 the database "
            "failed, 2 bad input."))
    window.add_argument("phone", help="the contact's number, e.g. +919800000001, or the "
                        "business-scoped user id of a customer who shares no number")
    window.add_argument("--account", default=None, help="account label (default: every one)")
    window.add_argument("--json", action="store_true", help="print JSON")
    window.set_defaults(handler=_window)

    replay = subparsers.add_parser(
        "replay", help="make a stopped sink read its topics again from a moment",
        description=("Move the sink's consumer group back to the offsets of --since. The "
                     "sink must be stopped; its writes are idempotent."))
    what = replay.add_subparsers(dest="what", required=True, metavar="sink")
    sink = what.add_parser("sink", help="replay a sink")
    sink.add_argument("name", choices=["postgres", "lake"])
    sink.add_argument("--since", required=True, help="the moment to read from (24h, ISO)")
    sink.add_argument("--dry-run", action="store_true", help="show the records per partition")
    sink.set_defaults(handler=_replay)


# `qikflow window`: the window is closed, or there is none.
WINDOW_CLOSED = 3


def _window(args: argparse.Namespace) -> int:
    import orjson

    from qikflow._logging import quiet_client_logs
    from qikflow.operations.database import Database
    from qikflow.operations.errors import OperationError
    from qikflow.operations.pipeline import Pipeline
    from qikflow.operations.windows import WindowAnswer, contact_number, windows

    quiet_client_logs()

    async def run() -> list[WindowAnswer]:
        db = Database(Pipeline.from_env().database_url, pool_size=1)
        try:
            return await windows(db, args.phone, args.account)
        finally:
            await db.close()

    try:
        found = asyncio.run(run())
    except OperationError as error:
        return _fail("window", error)
    if args.json:
        print(orjson.dumps([answer.to_dict() for answer in found],
                           option=orjson.OPT_INDENT_2).decode())
    elif not found:
        scope = f" for account {args.account}" if args.account is not None else ""
        print(f"{contact_number(args.phone)}: no incoming message on record{scope}, so no "
              "window: only template messages may be sent")
    for answer in [] if args.json else found:
        print(answer.line())
    return 0 if any(answer.is_open for answer in found) else WINDOW_CLOSED


def operator() -> str:
    return f"{getpass.getuser()}@cli"


def _fail(command: str, error: Exception) -> int:
    from qikflow.operations.errors import BadInputError

    print(f"qikflow {command}: {error}", file=sys.stderr)
    return BAD_INPUT if isinstance(error, BadInputError) else 1


def _trace(args: argparse.Namespace) -> int:
    from qikflow._logging import quiet_client_logs
    from qikflow.console.settings import ConsoleSettings
    from qikflow.operations._trace_text import render
    from qikflow.operations.database import Database
    from qikflow.operations.errors import OperationError
    from qikflow.operations.pipeline import Pipeline
    from qikflow.operations.trace import Trace, trace

    quiet_client_logs()
    settings, pipeline = ConsoleSettings(), Pipeline.from_env()

    async def run() -> Trace:
        db = Database(pipeline.database_url, pool_size=1)
        try:
            return await trace(pipeline, db, args.id, window_s=settings.search_window_s,
                               scan_limit=settings.page_scan_records)
        finally:
            await db.close()

    try:
        result = asyncio.run(run())
    except OperationError as error:
        return _fail("trace", error)
    sys.stdout.write(render(result))
    return 0 if result.found else 1


class _Progress:
    """Re-drive progress on stderr: redrawn on a terminal, a line per 10 % otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.decile = -1
        self.drawn = 0.0

    def __call__(self, scanned: int, total: int, sent: int) -> None:
        line = f"re-drive: read {scanned}/{total} dead letters, sent {sent}"
        if self.tty:
            if time.monotonic() - self.drawn > 0.1 or scanned >= total:
                self.drawn = time.monotonic()
                sys.stderr.write("\r" + line)
                sys.stderr.flush()
        elif scanned * 10 // max(total, 1) > self.decile:
            self.decile = scanned * 10 // max(total, 1)
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.tty and self.drawn:
            sys.stderr.write("\n")


def _redrive(args: argparse.Namespace) -> int:
    from qikflow._logging import quiet_client_logs
    from qikflow.console.settings import ConsoleSettings
    from qikflow.operations.audit import AuditTrail
    from qikflow.operations.dead_letters import DeadLetterFilter
    from qikflow.operations.errors import OperationError
    from qikflow.operations.pipeline import Pipeline
    from qikflow.operations.redrive import redrive
    from qikflow.operations.times import TimeRange

    quiet_client_logs()
    settings, pipeline = ConsoleSettings(), Pipeline.from_env()
    audit = AuditTrail(settings.audit_file)
    progress = _Progress()
    try:
        selection = DeadLetterFilter(args.reason, args.type, args.account,
                                     TimeRange.parse(args.since, args.until))
        if not args.dry_run:
            audit.check()
        summary = asyncio.run(redrive(pipeline, args.source, selection, dry_run=args.dry_run,
                                      window_s=settings.search_window_s, progress=progress))
    except OperationError as error:
        progress.close()
        return _fail("redrive", error)
    progress.close()
    if not args.dry_run:
        audit.record(operator(), "redrive", source=args.source, filter=selection.as_dict(),
                     matched=summary.matched, sent=summary.sent,
                     skipped=sum(summary.skipped.values()), error=summary.error)
    print("\n".join(summary.lines()))
    return 0 if summary.complete else 1


def _replay(args: argparse.Namespace) -> int:
    from qikflow._logging import quiet_client_logs
    from qikflow.console.settings import ConsoleSettings
    from qikflow.operations.audit import AuditTrail
    from qikflow.operations.errors import OperationError
    from qikflow.operations.pipeline import Pipeline
    from qikflow.operations.replay import replay
    from qikflow.operations.times import parse_time

    quiet_client_logs()
    audit = AuditTrail(ConsoleSettings().audit_file)
    try:
        since = parse_time(args.since, name="--since")
        if not args.dry_run:
            audit.check()
        plan = asyncio.run(replay(Pipeline.from_env(), args.name, since, dry_run=args.dry_run))
    except OperationError as error:
        return _fail("replay", error)
    if not args.dry_run:
        audit.record(operator(), "replay", sink=args.name, since=since.isoformat(),
                     group=plan.group, records=plan.records)
    print("\n".join(plan.lines()))
    return 0
