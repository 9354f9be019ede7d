"""Meta's WhatsApp Cloud API body: `entry[].changes[].value` with `messages[]`/`statuses[]`.

Each message and each status in the body becomes one event; whatever else a change says
(template and account updates, preferences, calls, echoes, value-level errors) becomes
notices (`_notices.py`), and a `statuses[]` item of `type: call` is a call status.
The business number is `value.metadata.display_phone_number`, its id
`metadata.phone_number_id`, the business account `entry[].id`; a message's customer is
`from` (and `from_user_id`), completed by the entry of `value.contacts[]` with that `wa_id`
or `user_id` (`_identity.py`); a status's customer is `recipient_id`. A group message
(`group_id`) or a status of a message sent to a group (`recipient_type: group`) carries
`group`; a group status's event id names the participant.
An item without an id (or with an event id longer than MAX_ID_BYTES), or that is not an
object, is skipped: it stays in the body, and a body with no parseable item at all is
Unrecognised so that the body is never lost.
A status's `timestamp` also fills the matching `sent_at`/`delivered_at`/`read_at`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.events import MAX_ID_BYTES
from streams.parsers._content import (
    id_too_long,
    message_content,
    status_content,
    status_event_id,
    status_name,
)
from streams.parsers._identity import (
    Contacts,
    group_status_event_id,
    message_contact,
    message_group,
    status_contact,
    status_group,
)
from streams.parsers._message_context import referral, reply_context
from streams.parsers._notices import (
    Change,
    call_status_notice,
    change_notices,
    is_call_status,
)
from streams.parsers._outcome import Origin, Parsed, Unrecognised
from streams.parsers.json_fields import (
    JSONObject,
    array,
    e164,
    obj,
    text,
    timestamp,
)

if TYPE_CHECKING:
    from ingest.record import RawRecord
    from streams.events import Event
    from streams.notices import NoticeEvent

OBJECT = "whatsapp_business_account"


def parse_body(body: JSONObject, record: RawRecord) -> Parsed | Unrecognised:
    """Parse a body whose `object` is `whatsapp_business_account`."""
    origin = Origin.of("meta", record)
    events: list[Event] = []
    notices: list[NoticeEvent] = []
    items = 0
    for entry in array(body, "entry"):
        if not isinstance(entry, dict):
            continue
        for item in array(entry, "changes"):
            if not isinstance(item, dict) or (value := obj(item, "value")) is None:
                continue
            metadata = obj(value, "metadata") or {}
            business = e164(metadata.get("display_phone_number"))
            contacts = Contacts(value)
            change = Change(origin, text(entry.get("id")), timestamp(entry.get("time")),
                            entry.get("time"), text(item.get("field")), business,
                             text(metadata.get("phone_number_id")))
            for message in array(value, "messages"):
                items += 1
                if isinstance(message, dict):
                    _keep(events, _message(change, message, contacts))
            for status in array(value, "statuses"):
                items += 1
                if isinstance(status, dict):
                    if is_call_status(status, change.field):
                        _keep(notices, call_status_notice(change, status))
                    else:
                        _keep(events, _status(change, status, contacts))
            found, count = change_notices(change, value)
            items += count
            for notice in found:
                _keep(notices, notice)
    if events or notices:
        return Parsed(events, notices)
    if items:
        return Unrecognised(f"meta: none of the {items} messages, statuses or notices is an "
                            f"object with what identifies it and an id of at most "
                            f"{MAX_ID_BYTES} bytes")
    return Unrecognised("meta: no messages, statuses or notices in the body")


def _keep(events: list[Any], event: Event | NoticeEvent | None) -> None:
    if event is not None and not id_too_long(event.event_id):
        events.append(event)


def _message(change: Change, message: JSONObject, contacts: Contacts) -> Event | None:
    message_id = text(message.get("id"))
    if not message_id:
        return None
    event_type, content = message_content(message)
    contact = message_contact(message, contacts)
    return change.origin.event(
        event_id=message_id,
        event_type=event_type,
        message_id=message_id,
        occurred_at=timestamp(message.get("timestamp")),
        business_number=change.business,
        contact=contact,
        content=content,
        raw=message,
        context=reply_context(message),
        referral=referral(message),
        phone_number_id=change.phone_number_id,
        business_account_id=change.entry_id,
        group=message_group(message, contact),
    )


def _status(change: Change, item: JSONObject, contacts: Contacts) -> Event | None:
    message_id = text(item.get("id"))
    if not message_id:
        return None
    status, original = status_name(item.get("status"))
    occurred_at = timestamp(item.get("timestamp"))
    content = status_content(
        status,
        original,
        item,
        sent_at=occurred_at if status == "sent" else None,
        delivered_at=occurred_at if status == "delivered" else None,
        read_at=occurred_at if status == "read" else None,
        recipient_id=text(item.get("recipient_id")),
    )
    group = status_group(item)
    return change.origin.event(
        event_id=group_status_event_id(status_event_id(message_id, status, original), group),
        event_type="status." + status,
        message_id=message_id,
        occurred_at=occurred_at,
        business_number=change.business,
        contact=status_contact(item, contacts),
        content=content,
        raw=item,
        phone_number_id=change.phone_number_id,
        business_account_id=change.entry_id,
        group=group,
    )
