"""Type-specific content shared by both formats: Qikchat copies Meta's message objects.

A message names its kind in `type`, and a key of the same name holds the content. When
that object is missing or unusable (not an object; a text without a string body; a
`contacts` that is not a list) the message becomes `message.unknown`, keeping the type it
claimed in `original_type`: a consumer of `message.text` can rely on a real body, and the
whole message is still in `raw`. Likewise an `edit` or a `revoke` without the id of the
message it changes (an edit of nothing) is `message.unknown`; a `system` message is
`message.system` whatever it holds (a number change without a new `wa_id` has it null).

A flow reply (`interactive.nfm_reply`) carries the flow's answers as a string of JSON
(`response_json`): decoded into `flow_response` when it is a JSON object, else kept as sent
in `flow_response_text`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from streams.events import (
    MAX_ID_BYTES,
    MEDIA_TYPES,
    ButtonContent,
    ContactsContent,
    Content,
    EditContent,
    InteractiveContent,
    LocationContent,
    MediaContent,
    OrderContent,
    ReactionContent,
    RevokeContent,
    StatusContent,
    StatusError,
    SystemContent,
    TextContent,
    UnknownMessageContent,
)
from streams.parsers._status_details import status_details
from streams.parsers.json_fields import (
    JSONObject,
    array,
    e164,
    nonempty,
    number,
    obj,
    text,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

KNOWN_STATUSES = frozenset({"sent", "delivered", "read", "failed", "played", "deleted"})
_INTERACTIVE_KINDS = ("button_reply", "list_reply", "nfm_reply")
# Types whose content is about another message or the contact, never an edit's new content.
_NOT_EDITABLE = ("message.unknown", "message.system", "message.edit", "message.revoke")


def message_content(message: JSONObject) -> tuple[str, Content]:
    """The event type (`message.text`) and content of a message object."""
    kind = message.get("type")
    if kind == "system":
        return "message.system", _system(message)
    if isinstance(kind, str):
        body = message.get(kind)
        build = _BUILDERS.get(kind)
        if build is not None and body is not None:
            content = build(body)
            if content is not None:
                return "message." + kind, content
    return "message.unknown", UnknownMessageContent(original_type=text(kind))


def _text(body: object) -> Content | None:
    if isinstance(body, dict) and isinstance(body.get("body"), str):
        return TextContent(body=body["body"])
    return None


def _media(body: object) -> Content | None:
    if not isinstance(body, dict):
        return None
    return MediaContent(
        url=text(body.get("url")) or text(body.get("link")),
        media_id=text(body.get("id")),
        mime_type=text(body.get("mime_type")),
        caption=text(body.get("caption")),
        filename=text(body.get("filename")),
        sha256=text(body.get("sha256")),
    )


def _location(body: object) -> Content | None:
    if not isinstance(body, dict):
        return None
    return LocationContent(
        latitude=number(body.get("latitude")),
        longitude=number(body.get("longitude")),
        name=text(body.get("name")),
        address=text(body.get("address")),
        url=text(body.get("url")),
    )


def _contacts(body: object) -> Content | None:
    if not isinstance(body, list):
        return None
    return ContactsContent(contacts=[card for card in body if isinstance(card, dict)])


def _interactive(body: object) -> Content | None:
    if not isinstance(body, dict):
        return None
    reply_type = text(body.get("type"))
    if reply_type is None:
        # No `type`: take the kind from whichever reply object is there.
        reply_type = next((k for k in _INTERACTIVE_KINDS if isinstance(body.get(k), dict)), None)
        if reply_type is None:
            return None
    reply = obj(body, reply_type) or {}
    flow = reply_type == "nfm_reply"
    response, response_text = _flow_response(reply.get("response_json")) if flow else (
        None, None)
    return InteractiveContent(
        reply_type=reply_type,
        reply_id=text(reply.get("id")),
        title=text(reply.get("title")) or text(reply.get("name")),
        description=text(reply.get("description")),
        flow_name=text(reply.get("name")) if flow else None,
        flow_response=response,
        flow_response_text=response_text,
    )


def _flow_response(value: object) -> tuple[dict[str, object] | None, str | None]:
    """(answers, None) when `response_json` is a JSON object (Meta sends a string; an object
    sent as is is taken too); (None, the string) when it is text that is not one."""
    if isinstance(value, dict):
        return value, None
    if not isinstance(value, str):
        return None, None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None, value
    return (decoded, None) if isinstance(decoded, dict) else (None, value)


def _system(message: JSONObject) -> Content:
    body = obj(message, "system") or {}
    identity = obj(message, "identity") or {}
    new_wa_id = text(body.get("wa_id")) or text(body.get("new_wa_id"))
    acknowledged = identity.get("acknowledged")
    return SystemContent(
        system_type=text(body.get("type")),
        body=text(body.get("body")),
        new_wa_id=new_wa_id,
        new_contact_number=e164(new_wa_id),
        previous_wa_id=text(body.get("customer")),
        identity_hash=text(identity.get("hash")),
        identity_acknowledged=acknowledged if isinstance(acknowledged, bool) else None,
    )


def _edit(body: object) -> Content | None:
    if not isinstance(body, dict) or not (original := nonempty(body.get("original_message_id"))):
        return None
    inner = obj(body, "message") or {}
    edited_type, edited = message_content(inner)
    usable = edited_type not in _NOT_EDITABLE
    return EditContent(
        original_message_id=original,
        edited_type=edited_type.partition(".")[2] if usable else text(inner.get("type")),
        edited=edited.model_dump(mode="json") if usable else None,
    )


def _revoke(body: object) -> Content | None:
    if not isinstance(body, dict) or not (original := nonempty(body.get("original_message_id"))):
        return None
    return RevokeContent(original_message_id=original)


def _button(body: object) -> Content | None:
    if not isinstance(body, dict):
        return None
    return ButtonContent(payload=text(body.get("payload")), text=text(body.get("text")))


def _reaction(body: object) -> Content | None:
    if not isinstance(body, dict):
        return None
    return ReactionContent(
        emoji=text(body.get("emoji")), reacted_message_id=text(body.get("message_id"))
    )


def _order(body: object) -> Content | None:
    if not isinstance(body, dict):
        return None
    return OrderContent(
        catalog_id=text(body.get("catalog_id")),
        text=text(body.get("text")),
        items=[item for item in array(body, "product_items") if isinstance(item, dict)],
    )


_BUILDERS: dict[str, Callable[[object], Content | None]] = {
    "text": _text,
    **dict.fromkeys(MEDIA_TYPES, _media),
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "edit": _edit,
    "revoke": _revoke,
}


def status_name(value: object) -> tuple[str, str | None]:
    """(`delivered`, None) for a known status; (`unknown`, the original value) otherwise."""
    original = text(value)
    if original is not None:
        normalised = original.strip().lower()
        if normalised in KNOWN_STATUSES:
            return normalised, None
    return "unknown", original


def id_too_long(event_id: str) -> bool:
    """Whether an event id is longer than MAX_ID_BYTES of UTF-8: such an event is not
    routed (each id travels four times in a record, see streams/budget.py)."""
    return len(event_id) > MAX_ID_BYTES // 4 and len(event_id.encode()) > MAX_ID_BYTES


def status_event_id(message_id: str, status: str, original: str | None) -> str:
    """`<id>:<status>`, or `<id>:unknown:<original>` so distinct unknown values stay apart."""
    if status == "unknown":
        return f"{message_id}:unknown:{original or ''}"
    return f"{message_id}:{status}"


def status_content(
    status: str,
    original: str | None,
    container: JSONObject,
    *,
    sent_at: datetime | None = None,
    delivered_at: datetime | None = None,
    read_at: datetime | None = None,
    recipient_id: str | None = None,
) -> StatusContent:
    """StatusContent with the errors of `container` (Qikchat's `error`, or each object of
    Meta's `errors[]`, the first one also flattened into `error_*`) and its pricing,
    conversation and callback data (`_status_details.py`) filled in."""
    details = status_details(container)
    error = details.errors[0] if details.errors else StatusError()
    return StatusContent(
        status=status,
        original_status=original,
        error_code=error.code,
        error_code_text=error.code_text,
        error_title=error.title,
        error_detail=error.details or nonempty(error.message),
        conversation_id=details.conversation.id if details.conversation else None,
        pricing_category=details.pricing.category if details.pricing else None,
        sent_at=sent_at,
        delivered_at=delivered_at,
        read_at=read_at,
        pricing=details.pricing,
        conversation=details.conversation,
        errors=details.errors,
        biz_opaque_callback_data=details.biz_opaque_callback_data,
        recipient_id=recipient_id,
    )
