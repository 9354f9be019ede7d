"""Events to table rows for the PostgreSQL sink, merged per key within a batch.

One INSERT ... ON CONFLICT may touch a row only once, so the statuses of one message in a
batch are merged here with `OutboundState.merge`, whose rules the upsert also renders
(`streams/outbound_state.py`): one definition, whatever the batch boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import orjson

from sinks._flat_columns import message_fields, utc
from sinks._pg_notices import NoticeRows
from sinks.base import PoisonRecordError, SinkRecord
from streams.contact_window import ContactWindow
from streams.events import (
    Content,
    EditContent,
    Event,
    Group,
    InteractiveContent,
    OptOutEvent,
    RevokeContent,
    StatusContent,
)
from streams.notices import NoticeEvent
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
    context_message_id: str | None = None
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None
    referred_catalog_id: str | None = None
    referred_product_id: str | None = None
    referral_source_id: str | None = None
    referral_source_type: str | None = None
    referral_source_url: str | None = None
    referral_headline: str | None = None
    referral_body: str | None = None
    referral_media_type: str | None = None
    referral_media_url: str | None = None
    ctwa_clid: str | None = None
    phone_number_id: str | None = None
    business_account_id: str | None = None
    contact_wa_id: str | None = None
    contact_user_id: str | None = None
    contact_parent_user_id: str | None = None
    contact_username: str | None = None
    group_id: str | None = None
    group_participant: str | None = None
    original_message_id: str | None = None
    flow_name: str | None = None
    flow_response: str | None = None


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
    pricing_billable: bool | None
    pricing_model: str | None
    pricing_type: str | None
    conversation_origin: str | None
    conversation_expires_at: datetime | None
    biz_opaque_callback_data: str | None
    recipient_id: str | None
    errors: str | None
    phone_number_id: str | None = None
    business_account_id: str | None = None
    contact_user_id: str | None = None
    group_id: str | None = None
    group_participant: str | None = None


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
    windows: dict[bytes, WindowRow]
    notices: NoticeRows = field(default_factory=NoticeRows)

    def optout_contacts(self) -> list[tuple[str, str]]:
        """The (account, contact) pairs whose opt-out the batch may change."""
        return sorted({*self.optouts, *((account, contact) for account, contact, _
                                        in self.notices.preferences)})


@dataclass(frozen=True, slots=True)
class WindowRow:
    account: str
    contact: str
    opened_at: datetime
    last_incoming_at: datetime
    closes_at: datetime
    last_message_id: str

    @classmethod
    def of(cls, window: ContactWindow) -> WindowRow:
        return cls(window.account, window.contact, utc(window.opened_at),
                   utc(window.last_incoming_at), utc(window.closes_at), window.last_message_id)


def to_rows(batch: list[SinkRecord]) -> Rows:
    rows = Rows({}, {}, {}, {}, {})
    windows: dict[bytes, ContactWindow] = {}
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
        elif isinstance(event, NoticeEvent):
            rows.notices.add(event, _json(event.content.model_dump(mode="json")),
                             _json(event.raw))
        elif event.kind == "message":
            rows.inbound.setdefault(event.message_id, _inbound_row(event))
            window = ContactWindow.of_event(event)
            if window is not None:
                current_window = windows.get(window.key)
                windows[window.key] = (window if current_window is None
                                       else current_window.extend(window))
        else:
            status = _status_row(event)
            rows.statuses.setdefault((status.message_id, status.status), status)
            outbound = _outbound_row(event)
            if outbound is not None:
                current_outbound = rows.outbound.get(outbound.message_id)
                rows.outbound[outbound.message_id] = (
                    outbound if current_outbound is None else current_outbound.merge(outbound)
                )
    rows.windows = {key: WindowRow.of(window) for key, window in windows.items()}
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
        **_context_columns(event),
        **_identity_columns(event),
        **_message_type_columns(content),
    )


def _identity_columns(event: Event) -> dict[str, Any]:
    """The business and contact ids and the group of an incoming message (migration 0008)."""
    group = event.group
    return dict(
        phone_number_id=event.phone_number_id, business_account_id=event.business_account_id,
        contact_wa_id=event.contact_wa_id, contact_user_id=event.contact_user_id,
        contact_parent_user_id=event.contact_parent_user_id,
        contact_username=event.contact_username,
        group_id=group.id if group else None,
        group_participant=_participant(group),
    )


def _participant(group: Group | None) -> str | None:
    if group is None:
        return None
    return group.participant_number or group.participant_wa_id or group.participant_user_id


def _message_type_columns(content: Content) -> dict[str, Any]:
    """The message an edit or revoke changes; a flow reply's name and answers."""
    if isinstance(content, EditContent | RevokeContent):
        return {"original_message_id": content.original_message_id}
    if isinstance(content, InteractiveContent) and content.reply_type == "nfm_reply":
        return {"flow_name": content.flow_name,
                "flow_response": None if content.flow_response is None
                else _json(content.flow_response)}
    return {}


def _context_columns(event: Event) -> dict[str, Any]:
    """The reply-context and referral columns of an incoming message (migration 0007)."""
    columns: dict[str, Any] = {}
    if (context := event.context) is not None:
        columns.update(
            context_message_id=context.message_id, forwarded=context.forwarded,
            frequently_forwarded=context.frequently_forwarded,
            referred_catalog_id=context.referred_catalog_id,
            referred_product_id=context.referred_product_id)
    if (referral := event.referral) is not None:
        columns.update(
            referral_source_id=referral.source_id, referral_source_type=referral.source_type,
            referral_source_url=referral.source_url, referral_headline=referral.headline,
            referral_body=referral.body, referral_media_type=referral.media_type,
            referral_media_url=referral.image_url or referral.video_url,
            ctwa_clid=referral.ctwa_clid)
    return columns


def _status_content(event: Event) -> StatusContent:
    if not isinstance(event.content, StatusContent):
        raise PoisonRecordError(
            f"event {event.event_id} of type {event.type} has no status content"
        )
    return event.content


def _status_row(event: Event) -> StatusRow:
    content = _status_content(event)
    pricing, conversation = content.pricing, content.conversation
    return StatusRow(
        message_id=event.message_id, status=content.status, event_id=event.event_id,
        account=event.account, contact=event.contact_number,
        original_status=content.original_status, occurred_at=utc(event.occurred_at),
        received_at=utc(event.received_at), error_code=content.error_code,
        error_title=content.error_title, error_detail=content.error_detail,
        conversation_id=content.conversation_id, pricing_category=content.pricing_category,
        raw=_json(event.raw),
        pricing_billable=pricing.billable if pricing else None,
        pricing_model=pricing.pricing_model if pricing else None,
        pricing_type=pricing.type if pricing else None,
        conversation_origin=conversation.origin_type if conversation else None,
        conversation_expires_at=utc(conversation.expires_at) if conversation else None,
        biz_opaque_callback_data=content.biz_opaque_callback_data,
        recipient_id=content.recipient_id,
        errors=_json([error.model_dump(mode="json") for error in content.errors])
        if content.errors else None,
        phone_number_id=event.phone_number_id, business_account_id=event.business_account_id,
        contact_user_id=event.contact_user_id,
        group_id=event.group.id if event.group else None,
        group_participant=_participant(event.group),
    )


def _outbound_row(event: Event) -> OutboundState | None:
    """The callback's state as the message-state agent builds it (`OutboundState.of_event`);
    None for `unknown` statuses: they are kept in message_status_events only."""
    _status_content(event)
    state = OutboundState.of_event(event)
    if state is None:
        return None
    # PostgreSQL reads the first and last instants Python holds as -infinity and infinity.
    return replace(state, **{name: utc(getattr(state, name)) for name in _TIMES})


_TIMES = ("sent_at", "delivered_at", "read_at", "failed_at", "updated_at", "played_at")


def _optout_row(event: OptOutEvent) -> OptOutRow:
    contact = event.contact_number or event.contact_user_id
    if not contact:
        raise PoisonRecordError(
            f"opt-out {event.event_id} has neither a contact number nor a user id; there is "
            "no one to record"
        )
    return OptOutRow(
        account=event.account, contact=contact, contact_name=event.contact_name,
        opted_out_at=utc(event.occurred_at or event.received_at), message_id=event.message_id,
        event_id=event.event_id, matched=event.matched, text=event.text,
        received_at=utc(event.received_at),
    )


def _json(value: Any) -> str:
    """JSON for a jsonb column; NULs replaced as in text columns (checked on the bytes, so
    the common case costs one search)."""
    dumped = orjson.dumps(value)
    if _ESCAPED_NUL in dumped:
        dumped = orjson.dumps(_without_nul(value))
    return dumped.decode()
