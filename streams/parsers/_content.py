"""Type-specific content shared by both formats: Qikchat copies Meta's message objects.

A message names its kind in `type`, and a key of the same name holds the content. When
that object is missing or unusable (not an object; a text without a string body; a
`contacts` that is not a list) the message becomes `message.unknown`, keeping the type it
claimed in `original_type`: a consumer of `message.text` can rely on a real body, and the
whole message is still in `raw`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.events import (
    MAX_ID_BYTES,
    MEDIA_TYPES,
    ButtonContent,
    ContactsContent,
    Content,
    InteractiveContent,
    LocationContent,
    MediaContent,
    OrderContent,
    ReactionContent,
    StatusContent,
    StatusError,
    TextContent,
    UnknownMessageContent,
)
from streams.parsers._status_details import status_details
from streams.parsers.json_fields import (
    JSONObject,
    array,
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


def message_content(message: JSONObject) -> tuple[str, Content]:
    """The event type (`message.text`) and content of a message object."""
    kind = message.get("type")
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
    return InteractiveContent(
        reply_type=reply_type,
        reply_id=text(reply.get("id")),
        title=text(reply.get("title")) or text(reply.get("name")),
        description=text(reply.get("description")),
    )


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
