"""The normalised event: the published contract of every `<prefix>.message.*` and
`<prefix>.status.*` topic. JSON (orjson) on the wire; JSON Schemas under `schemas/`.

Bump SCHEMA_VERSION on any change a consumer could notice, and keep old fields readable:
a field, once published, keeps its name, type and meaning; new fields are optional.
Readers must ignore fields they do not know: the schemas from version 2 on allow properties
beyond those they list, and `Event` ignores unknown top-level fields. (Content models stay
strict: that is how the `content` union picks the model of each type.)

- Version 1: the first contract.
- Version 2: status events carry `pricing`, `conversation`, `errors` (every error, the
  first still flattened into `error_*`), `biz_opaque_callback_data` and `recipient_id`.
  Added within version 2, on topics of their own so that no reader of an existing topic
  sees them: `status.played` and `status.deleted`, and the notices of
  `streams/notices.py` (template, account, preferences, provider errors, calls, echoes);
  `context` (reply, forwarding, referred product) and `referral` (ad) on incoming messages,
  left out of the JSON when the message has none; the business and contact identity
  (`phone_number_id`, `business_account_id`, `contact_wa_id`, `contact_user_id`,
  `contact_parent_user_id`, `contact_username`) and `group` on every event, and a flow
  reply's `flow_name` and answers in `message.interactive` content, each left out when the
  body has none; `message.system`, `message.edit` and `message.revoke` on topics of their
  own (they went to `message.unknown` before).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import Field, TypeAdapter

from streams.event_content import (
    MEDIA_TYPES,
    ButtonContent,
    ContactsContent,
    Content,
    Conversation,
    EditContent,
    Group,
    InteractiveContent,
    LocationContent,
    MediaContent,
    OpenModel,
    OrderContent,
    Pricing,
    ReactionContent,
    Referral,
    ReplyContext,
    RevokeContent,
    StatusContent,
    StatusError,
    SystemContent,
    TextContent,
    UnknownMessageContent,
    absent_when_none,
    content_model,
)

__all__ = [
    "MAX_ID_BYTES", "MEDIA_TYPES", "MESSAGE_TYPES", "SCHEMA_VERSION", "STATUSES", "STATUS_RANK",
    "ButtonContent", "ContactsContent", "Content", "Conversation", "EditContent", "Event",
    "Group", "InteractiveContent", "LocationContent", "MediaContent", "OptOutEvent",
    "OrderContent", "Pricing", "ReactionContent", "Referral", "ReplyContext", "RevokeContent",
    "StatusContent", "StatusError", "SystemContent", "TextContent", "UnknownMessageContent",
    "content_model", "event_types", "parse_time",
]

SCHEMA_VERSION = 2
# The longest event id (and so message id) an event may have, in UTF-8 bytes. Provider ids
# are under 100 bytes; an id travels four times in a per-type record (key, header, event id,
# message id), so a body with a longer one is not routed (see streams/parsers).
MAX_ID_BYTES = 1024

MESSAGE_TYPES = (
    "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "order", "system", "edit", "revoke", "unknown",
)
STATUSES = ("sent", "delivered", "read", "failed", "played", "deleted", "unknown")
# The final state of an outbound message is the highest it reached; `failed` stands beside.
# `played` (a voice message was played) ranks with `read`, which it implies; `deleted`
# moves no state (streams/outbound_state.py).
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 3}


# -- the event ------------------------------------------------------------------------


class Event(OpenModel):
    """One normalised WhatsApp event (an incoming message or a status change)."""

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this contract.")
    event_id: str = Field(
        description=(
            "Deterministic from provider data so that a resent webhook gives the same id: "
            "the message id for a message, `<message id>:<status>` for a status."
        )
    )
    type: str = Field(description="`message.<type>` or `status.<status>`, e.g. `message.text`.")
    kind: Literal["message", "status"]
    format: Literal["qikchat", "meta"] = Field(description="The body format it came in.")
    receipt_ids: list[str] = Field(description="Ingest receipt id(s) of the webhook(s).")
    received_at: datetime = Field(description="When ingest received the webhook (UTC).")
    occurred_at: datetime | None = Field(description="Provider timestamp of the event (UTC).")
    source: str = Field(description="Ingest source label, e.g. `qikchat`.")
    account: str = Field(description="Account label from the webhook URL, or empty.")
    business_number: str | None = Field(description="The business's WhatsApp number.")
    contact_number: str | None = Field(description="The customer's number, E.164 (`+91...`).")
    contact_name: str | None = Field(description="The customer's WhatsApp profile name.")
    message_id: str = Field(description="Provider message id (wamid or Qikchat id).")
    content: Content = Field(description="Type-specific fields; shape depends on `type`.")
    raw: dict[str, Any] = Field(description="The original message or status object, unchanged.")
    # -- added within version 2; absent (not null) when the message has none ------------
    context: ReplyContext | None = absent_when_none(
        "An incoming message's reply context: the message replied to, forwarding, a referred "
        "product.")
    referral: Referral | None = absent_when_none(
        "An incoming message's ad referral (click-to-WhatsApp).")
    phone_number_id: str | None = absent_when_none(
        "The business number's id (`metadata.phone_number_id`), needed to reply through the "
        "Cloud API.")
    business_account_id: str | None = absent_when_none(
        "The WhatsApp Business Account id (`entry[].id`).")
    contact_wa_id: str | None = absent_when_none(
        "The customer's WhatsApp id as sent (`wa_id`, `from`, `recipient_id`).")
    contact_user_id: str | None = absent_when_none(
        "The customer's business-scoped user id (`user_id`, `from_user_id`, "
        "`recipient_user_id`).")
    contact_parent_user_id: str | None = absent_when_none(
        "The parent business-scoped user id, when sent.")
    contact_username: str | None = absent_when_none(
        "The customer's WhatsApp username, when sent.")
    group: Group | None = absent_when_none(
        "The group of a group message or of a status of a message sent to a group.")

    @property
    def key(self) -> bytes:
        """Kafka key: the contact for messages (the number, else the business-scoped user
        id), the message id for statuses and for messages with neither (keeps order)."""
        if self.kind == "message":
            contact = self.contact_number or self.contact_user_id
            if contact:
                return contact.encode()
        return self.message_id.encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        return _EVENT_ADAPTER.validate_json(data)


def parse_time(value: str | None) -> datetime | None:
    """A time as the contract writes it (ISO 8601), or None."""
    if value is None:
        return None
    return datetime.fromisoformat(value)


_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_types() -> list[str]:
    """Every event type with a topic of its own."""
    return [f"message.{name}" for name in MESSAGE_TYPES] + [f"status.{s}" for s in STATUSES]


class OptOutEvent(OpenModel):
    """A contact asked to stop receiving messages (topic `<prefix>.contact.optout`)."""

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this contract.")
    event_id: str = Field(description="`optout:<message id>` of the message that opted out, "
                          "or `optout:<event id>` of a marketing `stop` (contact.preferences).")
    type: Literal["contact.optout"] = "contact.optout"
    contact_number: str | None = Field(description="The customer's number, E.164.")
    contact_user_id: str | None = absent_when_none(
        "The customer's business-scoped user id, where sent (the key of a customer who "
        "shares no number).")
    contact_name: str | None
    account: str
    message_id: str = Field(description="The incoming message that asked to stop, or the "
                            "event id of the `contact.preferences` notice.")
    text: str = Field(description="The message text, unchanged (a preference's `detail`).")
    matched: str = Field(description="The normalised phrase that matched, e.g. `stop`, or "
                         "`marketing_messages` for a marketing `stop`.")
    occurred_at: datetime | None
    received_at: datetime
    receipt_ids: list[str]

    @property
    def key(self) -> bytes:
        return (self.contact_number or self.contact_user_id or self.message_id).encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, data: bytes | str) -> OptOutEvent:
        return cls.model_validate_json(data)
