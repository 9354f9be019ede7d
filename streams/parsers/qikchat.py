"""Qikchat's own envelope: `{"event": ..., "payload": {...}}`, one event per body.

- `whatsapp:message:in` is an incoming message, `whatsapp:message:status` a status of one
  the business sent; any other `event` is Unrecognised (not an error).
- The message id is `payload.message.id`, else `payload.id`; without one, Unrecognised.
- The customer is `payload.contacts[0].to` (name: `.profile.name`); `message.from` is the
  business number. Meta's contact ids, where Qikchat passes them on, are read the same way
  (`wa_id`, `user_id`, `parent_user_id`, `profile.username`, `_identity.py`), as are a
  message's `group_id` and a status's group fields in `payload.message`; the business ids
  from `payload.metadata.phone_number_id` (or `payload.phone_number_id`) and
  `payload.business_account_id` (or `payload.waba_id`). None of these is documented by
  Qikchat: each is optional.
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
from streams.parsers._identity import (
    Contact,
    group_status_event_id,
    is_group_status,
    message_group,
    status_group,
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


def _contact(payload: JSONObject) -> Contact:
    contact = first_obj(payload, "contacts")
    return Contact() if contact is None else Contact.of_entry(contact)


def _business_ids(payload: JSONObject) -> tuple[str | None, str | None]:
    """(phone_number_id, business_account_id), where the payload has them."""
    metadata = obj(payload, "metadata") or {}
    return (nonempty(metadata.get("phone_number_id")) or nonempty(payload.get("phone_number_id")),
            nonempty(payload.get("business_account_id")) or nonempty(payload.get("waba_id")))


def _message(origin: Origin, payload: JSONObject, message: JSONObject, message_id: str) -> Event:
    event_type, content = message_content(message)
    contact = _contact(payload)
    phone_number_id, business_account_id = _business_ids(payload)
    return origin.event(
        event_id=message_id,
        event_type=event_type,
        message_id=message_id,
        occurred_at=timestamp(message.get("timestamp")),
        business_number=e164(message.get("from")),
        contact=contact,
        content=content,
        raw=message,
        context=reply_context(message),
        referral=referral(message),
        group=message_group(message, contact),
        phone_number_id=phone_number_id,
        business_account_id=business_account_id,
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
    group = status_group(message)
    phone_number_id, business_account_id = _business_ids(payload)
    return origin.event(
        event_id=group_status_event_id(status_event_id(message_id, status, original), group),
        event_type="status." + status,
        message_id=message_id,
        occurred_at=occurred_at,
        business_number=e164(message.get("from")),
        contact=Contact() if is_group_status(message) else _contact(payload),
        content=content,
        raw=payload,
        group=group,
        phone_number_id=phone_number_id,
        business_account_id=business_account_id,
    )
