"""Events to table rows for the PostgreSQL sink, merged per key within a batch.

One INSERT ... ON CONFLICT may touch a row only once, so the statuses of one message in a
batch are merged here with `OutboundState.merge`, whose rules the upsert also renders
(`streams/outbound_state.py`): one definition, whatever the batch boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson

from sinks._flat_columns import message_fields, utc
from sinks.base import PoisonRecordError, SinkRecord
from streams.events import STATUS_RANK, Event, OptOutEvent, StatusContent
from streams.outbound_state import OutboundState


@dataclass(frozen=True, slots=True)
class InboundRow:
    message_id: str
    event_id: str
    account: str
    contact: str | None
    contact_name: str | None
    business_number: str | None
    type: str
    text: str | None
    media_url: str | None
    mime_type: str | None
    caption: str | None
    content: str
    occurred_at: datetime | None
    received_at: datetime
    raw: str


@dataclass(frozen=True, slots=True)
class StatusRow:
    message_id: str
    status: str
    event_id: str
    account: str
    contact: str | None
    original_status: str | None
    occurred_at: datetime | None
    received_at: datetime
    error_code: int | None
    error_title: str | None
    error_detail: str | None
    conversation_id: str | None
    pricing_category: str | None
    raw: str


@dataclass(frozen=True, slots=True)
class OptOutRow:
    account: str
    contact: str
    contact_name: str | None
    opted_out_at: datetime
    message_id: str
    event_id: str
    matched: str
    text: str
    received_at: datetime


@dataclass
class Rows:
    """A batch split into the rows of each table, at most one per primary key."""

    inbound: dict[str, InboundRow]
    statuses: dict[tuple[str, str], StatusRow]
    outbound: dict[str, OutboundState]
    optouts: dict[tuple[str, str], OptOutRow]


def to_rows(batch: list[SinkRecord]) -> Rows:
    rows = Rows({}, {}, {}, {})
    for record in batch:
        event = record.event
        if isinstance(event, OptOutEvent):
            optout = _optout_row(event)
            key = (optout.account, optout.contact)
            current = rows.optouts.get(key)
            if current is None or (optout.opted_out_at, optout.message_id) < (
                current.opted_out_at, current.message_id
            ):
                rows.optouts[key] = optout
        elif event.kind == "message":
            rows.inbound.setdefault(event.message_id, _inbound_row(event))
        else:
            status = _status_row(event)
            rows.statuses.setdefault((status.message_id, status.status), status)
            outbound = _outbound_row(event)
            if outbound is not None:
                current_outbound = rows.outbound.get(outbound.message_id)
                rows.outbound[outbound.message_id] = (
                    outbound if current_outbound is None else current_outbound.merge(outbound)
                )
    return rows


# PostgreSQL text and jsonb cannot hold U+0000, which is valid in a WhatsApp message. The
# store keeps such text with each NUL replaced by U+2400 (SYMBOL FOR NULL); Kafka and the
# lake keep the exact text. See docs/sinks.md.
NUL, NUL_STAND_IN = "\x00", "\u2400"
_ESCAPED_NUL = b"\\u0000"


def columns(rows: list[Any]) -> list[list[Any]]:
    """Row dataclasses to one list per column, for `unnest($1::text[], ...)`."""
    if not rows:
        return []
    names = [field.name for field in fields(rows[0])]
    return [[_storable(getattr(row, name)) for row in rows] for name in names]


def _storable(value: Any) -> Any:
    if isinstance(value, str) and NUL in value:
        return value.replace(NUL, NUL_STAND_IN)
    return value


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(NUL, NUL_STAND_IN)
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _inbound_row(event: Event) -> InboundRow:
    content = event.content
    flat = message_fields(content)
    return InboundRow(
        message_id=event.message_id, event_id=event.event_id, account=event.account,
        contact=event.contact_number, contact_name=event.contact_name,
        business_number=event.business_number, type=event.type.partition(".")[2],
        text=flat.text, media_url=flat.media_url, mime_type=flat.mime_type,
        caption=flat.caption,
        content=_json(content.model_dump(mode="json")), occurred_at=utc(event.occurred_at),
        received_at=utc(event.received_at), raw=_json(event.raw),
    )


def _status_content(event: Event) -> StatusContent:
    if not isinstance(event.content, StatusContent):
        raise PoisonRecordError(
            f"event {event.event_id} of type {event.type} has no status content"
        )
    return event.content


def _status_row(event: Event) -> StatusRow:
    content = _status_content(event)
    return StatusRow(
        message_id=event.message_id, status=content.status, event_id=event.event_id,
        account=event.account, contact=event.contact_number,
        original_status=content.original_status, occurred_at=utc(event.occurred_at),
        received_at=utc(event.received_at), error_code=content.error_code,
        error_title=content.error_title, error_detail=content.error_detail,
        conversation_id=content.conversation_id, pricing_category=content.pricing_category,
        raw=_json(event.raw),
    )


def _outbound_row(event: Event) -> OutboundState | None:
    """None for `unknown` statuses: they are kept in message_status_events only."""
    content = _status_content(event)
    status = content.status
    if status not in STATUS_RANK and status != "failed":
        return None
    at = utc(event.occurred_at)
    failed = status == "failed"
    return OutboundState(
        message_id=event.message_id, account=event.account, contact=event.contact_number,
        status_rank=STATUS_RANK.get(status, 0), failed=failed,
        error_code=content.error_code if failed else None,
        error_title=content.error_title if failed else None,
        sent_at=_earliest(utc(content.sent_at), at if status == "sent" else None),
        delivered_at=_earliest(utc(content.delivered_at), at if status == "delivered" else None),
        read_at=_earliest(utc(content.read_at), at if status == "read" else None),
        failed_at=at if failed else None,
        updated_at=at or utc(event.received_at),
    )


def _optout_row(event: OptOutEvent) -> OptOutRow:
    if not event.contact_number:
        raise PoisonRecordError(
            f"opt-out {event.event_id} has no contact number; there is no one to record"
        )
    return OptOutRow(
        account=event.account, contact=event.contact_number, contact_name=event.contact_name,
        opted_out_at=utc(event.occurred_at or event.received_at), message_id=event.message_id,
        event_id=event.event_id, matched=event.matched, text=event.text,
        received_at=utc(event.received_at),
    )


def _earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def _json(value: Any) -> str:
    """JSON for a jsonb column; NULs replaced as in text columns (checked on the bytes, so
    the common case costs one search)."""
    dumped = orjson.dumps(value)
    if _ESCAPED_NUL in dumped:
        dumped = orjson.dumps(_without_nul(value))
    return dumped.decode()
