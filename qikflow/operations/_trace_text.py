"""A trace as text, for `qikflow trace` (the console renders the same Trace as HTML)."""

from __future__ import annotations

import textwrap

from qikflow.operations.records import ShownBody
from qikflow.operations.times import format_ms
from qikflow.operations.trace import Placement, ReceiptTrace, Trace


def _body(body: ShownBody, indent: str) -> list[str]:
    if body.kind == "empty":
        return [f"{indent}body: empty"]
    return [f"{indent}body ({body.label()}):", textwrap.indent(body.text, indent + "  ")]


def _record(title: str, placement: Placement, indent: str, *, body: bool) -> list[str]:
    lines = [f"{indent}{title}: {placement.where}, written {format_ms(placement.timestamp_ms)}"]
    if placement.key is not None:
        lines.append(f"{indent}  key: {placement.key.decode('utf-8', 'backslashreplace')}")
    lines += [f"{indent}  {name}: {value}" for name, value in placement.headers]
    return lines + (_body(placement.body, indent + "  ") if body else [])


def _receipt(traced: ReceiptTrace) -> list[str]:
    lines = [f"receipt {traced.receipt_id}"]
    if traced.raw is not None:
        lines += _record("raw record", traced.raw, "  ", body=True)
    if traced.quarantined is not None:
        letter = traced.quarantined
        lines.append(f"  in the ingest's quarantine since {format_ms(letter.timestamp_ms)}: "
                     f"{letter.reason} ({letter.size} bytes); `qikflow redrive --from "
                     "quarantine` sends it again")
    if traced.outcome:
        lines.append(f"  today's parser {traced.outcome}")
    for event in traced.events:
        message = f", message {event.message_id}" if event.message_id else ""
        lines.append(f"  event {event.event_id} ({event.event_type}){message}")
        if event.record is not None:
            lines += _record("in", event.record, "    ", body=False)
        else:
            lines.append(f"    not found in {event.topic} (not routed yet, dropped as a copy, "
                         "or dead-lettered: see below)")
        for table, row in event.rows:
            shown = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("raw", "content"))
            lines.append(f"    PostgreSQL {table}: {shown}")
        if not event.rows and not event.problems:
            lines.append("    PostgreSQL: no row yet")
        lines.append(f"    lake: {event.lake_file or 'not in a Parquet file yet'}")
        lines += [f"    ! {problem}" for problem in event.problems]
    for placement in traced.dead_letters:
        lines += _record("dead letter", placement, "  ", body=False)
    lines += [f"  note: {note}" for note in traced.notes]
    return lines


def render(trace: Trace) -> str:
    lines = [f"trace of {trace.query}"]
    for traced in trace.receipts:
        lines += ["", *_receipt(traced)]
    lines += [f"note: {note}" for note in trace.notes]
    return "\n".join(lines) + "\n"
