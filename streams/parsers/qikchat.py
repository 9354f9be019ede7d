"""Qikchat's own envelope: `{"event": ..., "payload": {...}}`, one event per body.

- `whatsapp:message:in` is an incoming message, `whatsapp:message:status` a status of one
  the business sent; any other `event` is Unrecognised (not an error).
- The message id is `payload.message.id`, else `payload.id`; without one, Unrecognised.
- The customer is `payload.contacts[0].to` (name: `.profile.name`); `message.from` is the
  business number.
- `raw` is `payload.message` for a message (as Meta's message object) and the whole
  `payload` for a status, because a status's `payload.message` lacks the id and number
  that Meta's status object carries.
- A status's `occurred_at` is the timestamp of the state it reports (`deliveredAt` for
  delivered...), else `lastUpdatedAt`, else `processedAt`, else `message.timestamp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.events import MAX_ID_BYTES
from streams.parsers._content import (
    id_too_long,
    message_content,
    status_content,
    status_event_id,
    status_name,
)
from streams.parsers._message_context import referral, reply_context
from streams.parsers._outcome import Origin, Parsed, Unrecognised
from streams.parsers.json_fields import (
    JSONObject,
    e164,
    first_obj,
    nonempty,
    obj,
    shown,
    text,
    timestamp,
)

if TYPE_CHECKING:
    from ingest.record import RawRecord
    from streams.events import Event

MESSAGE_IN = "whatsapp:message:in"
MESSAGE_STATUS = "whatsapp:message:status"


def parse_envelope(envelope: JSONObject, record: RawRecord) -> Parsed | Unrecognised:
    """Parse a `{"event", "payload"}` object (already unwrapped from `{"message": ...}`)."""
    name = envelope.get("event")
    if name != MESSAGE_IN and name != MESSAGE_STATUS:
        return Unrecognised(f"qikchat: unknown event {shown(name)}")
    payload = obj(envelope, "payload")
    if payload is None:
        return Unrecognised(f"qikchat: {name} without a `payload` object")
    message = obj(payload, "message")
    if message is None:
        return Unrecognised(f"qikchat: {name} without a `payload.message` object")
    message_id = text(message.get("id")) or text(payload.get("id"))
    if not message_id:
        return Unrecognised(f"qikchat: {name} without `payload.message.id` or `payload.id`")
    origin = Origin.of("qikchat", record)
    if name == MESSAGE_IN:
        event = _message(origin, payload, message, message_id)
    else:
        event = _status(origin, payload, message, message_id)
    if id_too_long(event.event_id):
        return Unrecognised(f"qikchat: {name} with an event id longer than {MAX_ID_BYTES} "
                            "bytes")
    return Parsed([event])


def _contact(payload: JSONObject) -> tuple[str | None, str | None]:
    contact = first_obj(payload, "contacts")
    if contact is None:
        return None, None
    number = e164(contact.get("to")) or e164(contact.get("wa_id"))
    profile = obj(contact, "profile")
    return number, nonempty(profile.get("name")) if profile is not None else None


def _message(origin: Origin, payload: JSONObject, message: JSONObject, message_id: str) -> Event:
    event_type, content = message_content(message)
    number, name = _contact(payload)
    return origin.event(
        event_id=message_id,
        event_type=event_type,
        message_id=message_id,
        occurred_at=timestamp(message.get("timestamp")),
        business_number=e164(message.get("from")),
        contact_number=number,
        contact_name=name,
        content=content,
        raw=message,
        context=reply_context(message),
        referral=referral(message),
    )


def _status(origin: Origin, payload: JSONObject, message: JSONObject, message_id: str) -> Event:
    status, original = status_name(message.get("status"))
    sent_at = timestamp(message.get("sentAt"))
    delivered_at = timestamp(message.get("deliveredAt"))
    read_at = timestamp(message.get("readAt"))
    own = {"sent": sent_at, "delivered": delivered_at, "read": read_at}.get(status)
    occurred_at = (
        own
        or timestamp(message.get("lastUpdatedAt"))
        or timestamp(message.get("processedAt"))
        or timestamp(message.get("timestamp"))
    )
    recipient = first_obj(payload, "contacts") or {}
    content = status_content(
        status, original, message, sent_at=sent_at, delivered_at=delivered_at, read_at=read_at,
        recipient_id=text(recipient.get("to")) or text(recipient.get("wa_id")),
    )
    number, name = _contact(payload)
    return origin.event(
        event_id=status_event_id(message_id, status, original),
        event_type="status." + status,
        message_id=message_id,
        occurred_at=occurred_at,
        business_number=e164(message.get("from")),
        contact_number=number,
        contact_name=name,
        content=content,
        raw=payload,
    )
