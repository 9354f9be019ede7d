"""Finding messages in PostgreSQL, and one message with its status history.

Search is by message id, customer number, account and time (indexes of migrations 0001
and 0004); a receipt id is first resolved to the message ids of its raw record (see
trace.py), since rows do not keep receipt ids. Incoming and outgoing messages are
listed together, newest first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qikflow.operations.database import Database
from qikflow.operations.error_codes import meaning
from qikflow.operations.errors import BadInputError, UnknownIdError
from qikflow.operations.times import TimeRange

_NUMBER = re.compile(r"^\+[1-9]\d{5,14}$")
_SEPARATORS = re.compile(r"[\s().\-/]")
STATUS_ORDER = {"sent": 1, "delivered": 2, "read": 3, "failed": 4, "unknown": 5}


def normalise_number(text: str) -> str:
    """A customer number as stored (E.164, `+919876543210`) from what an operator types
    (`+91 98765-43210`, `0091...`, `919876543210`)."""
    number = _SEPARATORS.sub("", text.strip())
    if number.startswith("00"):
        number = "+" + number[2:]
    elif number.isdigit():
        number = "+" + number
    if not _NUMBER.match(number):
        raise BadInputError(f"{text!r} is not a phone number: give it with its country code, "
                            "e.g. +919876543210")
    return number


@dataclass(frozen=True, slots=True)
class MessageQuery:
    message_ids: tuple[str, ...] = ()
    number: str = ""
    account: str = ""
    times: TimeRange = field(default_factory=TimeRange)
    limit: int = 50


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """One line of a search: an incoming message or the state of an outgoing one."""

    direction: str  # "in" or "out"
    message_id: str
    account: str
    contact: str | None
    what: str  # the message type, or the outgoing message's status
    text: str | None
    at: datetime
    error_code: int | None


_SEARCH = """
SELECT * FROM (
  SELECT 'in' AS direction, message_id, account, contact, type AS what, text,
         received_at AS at, NULL::bigint AS error_code
  FROM inbound_messages WHERE {inbound}
  UNION ALL
  SELECT 'out', message_id, account, contact,
         CASE WHEN failed THEN 'failed' ELSE status END, NULL, updated_at, error_code
  FROM outbound_messages WHERE {outbound}
) found ORDER BY at DESC LIMIT {limit}
"""


async def search(db: Database, query: MessageQuery) -> list[MessageSummary]:
    args: list[Any] = []

    def where(time_column: str) -> str:
        conditions = ["true"]
        for column, value in (("message_id", list(query.message_ids) or None),
                              ("contact", query.number or None),
                              ("account", query.account or None)):
            if value is not None:
                args.append(value)
                operator = "= ANY(${})" if isinstance(value, list) else "= ${}"
                conditions.append(f"{column} {operator.format(len(args))}")
        for operator, moment in ((">=", query.times.since), ("<=", query.times.until)):
            if moment is not None:
                args.append(moment)
                conditions.append(f"{time_column} {operator} ${len(args)}")
        return " AND ".join(conditions)

    sql = _SEARCH.format(inbound=where("received_at"), outbound=where("updated_at"),
                         limit=int(query.limit))
    rows = await db.fetch(sql, *args)
    return [MessageSummary(**dict(row)) for row in rows]


@dataclass
class StatusChange:
    status: str
    occurred_at: datetime | None
    received_at: datetime
    error_code: int | None
    error_title: str | None
    error_detail: str | None
    error_meaning: str
    original_status: str | None


@dataclass
class MessageDetail:
    message_id: str
    inbound: dict[str, Any] | None
    outbound: dict[str, Any] | None
    history: list[StatusChange]

    @property
    def state(self) -> str:
        if self.outbound is not None:
            failed = self.outbound["failed"]
            return "failed" if failed and self.outbound["status_rank"] == 0 else (
                f"{self.outbound['status']}{' (a failure was reported too)' if failed else ''}")
        return "received" if self.inbound is not None else "statuses only"


async def message(db: Database, message_id: str) -> MessageDetail:
    """Everything PostgreSQL holds on `message_id`; UnknownIdError when it holds nothing."""
    inbound = await db.fetch("SELECT * FROM inbound_messages WHERE message_id = $1", message_id)
    outbound = await db.fetch("SELECT * FROM outbound_messages WHERE message_id = $1", message_id)
    statuses = await db.fetch(
        "SELECT * FROM message_status_events WHERE message_id = $1", message_id)
    if not inbound and not outbound and not statuses:
        raise UnknownIdError(
            f"no message {message_id!r} in PostgreSQL (inbound_messages, outbound_messages, "
            "message_status_events); if it never got that far, trace its receipt id")
    history = [StatusChange(
        row["status"], row["occurred_at"], row["received_at"], row["error_code"],
        row["error_title"], row["error_detail"],
        meaning(row["error_code"], row["error_title"]) if row["status"] == "failed" else "",
        row["original_status"],
    ) for row in statuses]
    # In order of occurrence; a status without a provider time by its lifecycle step.
    history.sort(key=lambda change: (change.occurred_at is None, change.occurred_at or
                                     change.received_at, STATUS_ORDER.get(change.status, 9)))
    return MessageDetail(message_id, dict(inbound[0]) if inbound else None,
                         dict(outbound[0]) if outbound else None, history)
