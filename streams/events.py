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
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 2
# The longest event id (and so message id) an event may have, in UTF-8 bytes. Provider ids
# are under 100 bytes; an id travels four times in a per-type record (key, header, event id,
# message id), so a body with a longer one is not routed (see streams/parsers).
MAX_ID_BYTES = 1024

MESSAGE_TYPES = (
    "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "order", "system", "edit", "revoke", "unknown",
)
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
STATUSES = ("sent", "delivered", "read", "failed", "played", "deleted", "unknown")
# The final state of an outbound message is the highest it reached; `failed` stands beside.
# `played` (a voice message was played) ranks with `read`, which it implies; `deleted`
# moves no state (streams/outbound_state.py).
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 3}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Record(BaseModel):
    """A record or part of one that no union chooses by its fields: fields a later version
    adds are ignored, not refused."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# -- type-specific content ------------------------------------------------------------


class TextContent(_Model):
    body: str = Field(description="The message text.")


class MediaContent(_Model):
    url: str | None = Field(None, description="Direct download link (Qikchat).")
    media_id: str | None = Field(None, description="Media id to fetch from Meta (Cloud API).")
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None
    sha256: str | None = None


class LocationContent(_Model):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ContactsContent(_Model):
    contacts: list[dict[str, Any]] = Field(description="Shared contact cards, as sent.")


class InteractiveContent(_Model):
    reply_type: str = Field(description="`button_reply`, `list_reply`, `nfm_reply` (a flow "
                            "reply) or another kind as sent.")
    reply_id: str | None = None
    title: str | None = None
    description: str | None = None
    # -- added within version 2: a flow reply's (`nfm_reply`); absent for other replies ---
    flow_name: str | None = Field(
        None, description="The flow's `name` (`nfm_reply`; `title` holds it too, as before).",
        exclude_if=lambda value: value is None)
    flow_response: dict[str, Any] | None = Field(
        None, description="The flow's answers: `response_json` (a string on the wire) "
        "decoded, when it is a JSON object.", exclude_if=lambda value: value is None)
    flow_response_text: str | None = Field(
        None, description="`response_json` as sent, when it is not a JSON object (then "
        "`flow_response` is absent).", exclude_if=lambda value: value is None)


class ButtonContent(_Model):
    payload: str | None = Field(None, description="Payload of the template quick-reply button.")
    text: str | None = None


class ReactionContent(_Model):
    emoji: str | None = Field(None, description="The emoji; empty or null removes a reaction.")
    reacted_message_id: str | None = Field(None, description="The message reacted to.")


class OrderContent(_Model):
    catalog_id: str | None = None
    text: str | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)


class SystemContent(_Model):
    """A system message: the customer changed their number or their identity."""

    system_type: str | None = Field(
        description="`user_changed_number`, `customer_identity_changed`, ... as sent.")
    body: str | None = Field(None, description="The text WhatsApp shows, as sent.")
    new_wa_id: str | None = Field(
        None, description="The customer's new WhatsApp id (`system.wa_id`), for a number "
        "change; null when the message has none.")
    new_contact_number: str | None = Field(None, description="`new_wa_id` as E.164.")
    previous_wa_id: str | None = Field(
        None, description="The id the customer had (`system.customer`), when sent.")
    identity_hash: str | None = Field(None, description="`identity.hash`, for an identity "
                                      "change.")
    identity_acknowledged: bool | None = Field(None, description="`identity.acknowledged`.")


class EditContent(_Model):
    """The customer edited a message they sent."""

    original_message_id: str = Field(description="The message edited.")
    edited_type: str | None = Field(
        description="The edited message's type (`text`, `image`...), as sent.")
    edited: dict[str, Any] | None = Field(
        description="The new content, with the fields the content of `message.<edited_type>` "
        "has (a text's `body`, an image's `media_id` and `caption`...); null when the edit "
        "carries no usable content (it is in `raw`).")


class RevokeContent(_Model):
    """The customer deleted a message they sent."""

    original_message_id: str = Field(description="The message deleted.")


class UnknownMessageContent(_Model):
    original_type: str | None = Field(description="The `type` the provider sent, unchanged.")


class Pricing(_Record):
    """What WhatsApp charges for the message, as the status that carries it says."""

    billable: bool | None = Field(None, description="Whether the message is charged.")
    pricing_model: str | None = Field(None, description="`CBP`, `PMP`, ... as sent.")
    type: str | None = Field(
        None, description="`regular`, `free_customer_service`, `free_entry_point`, ... as sent."
    )
    category: str | None = Field(
        None, description="`marketing`, `utility`, `authentication`, `service`, ... as sent."
    )


class Conversation(_Record):
    """The conversation the message was sent in (Meta's conversation-based pricing)."""

    id: str | None = None
    expires_at: datetime | None = Field(
        None, description="When the conversation expires (`expiration_timestamp`), UTC."
    )
    origin_type: str | None = Field(
        None, description="`marketing`, `utility`, `service`, `referral_conversion`, ..."
    )


class StatusError(_Record):
    """One entry of a status's `errors` (or Qikchat's `error`)."""

    code: int | None = Field(None, description="The code, when it is an integer of 64 bits.")
    code_text: str | None = Field(
        None, description="The code as sent, when it is not an integer of 64 bits.",
        exclude_if=lambda value: value is None,
    )
    title: str | None = None
    message: str | None = None
    details: str | None = Field(None, description="`error_data.details`, or `details`.")


class StatusContent(_Model):
    status: str = Field(description="sent, delivered, read, failed, played, deleted, or unknown.")
    original_status: str | None = Field(None, description="The provider's value when unknown.")
    error_code: int | None = Field(
        None, description="The provider's error code, when it is an integer of 64 bits."
    )
    error_code_text: str | None = Field(
        None,
        description=(
            "The error code as sent, when it is not an integer of 64 bits (then `error_code` "
            "is null); absent otherwise."
        ),
        exclude_if=lambda value: value is None,
    )
    error_title: str | None = None
    error_detail: str | None = None
    conversation_id: str | None = None
    pricing_category: str | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    # -- version 2 ------------------------------------------------------------------
    pricing: Pricing | None = Field(None, description="Pricing, when the status carries it.")
    conversation: Conversation | None = Field(
        None, description="The conversation, when the status carries it."
    )
    errors: list[StatusError] = Field(
        default_factory=list,
        description="Every error the status carries, in order; the first is also flattened "
        "into `error_code`, `error_title` and `error_detail`.",
    )
    biz_opaque_callback_data: str | None = Field(
        None, description="The tracking string the business attached when sending."
    )
    recipient_id: str | None = Field(
        None, description="The recipient as the provider names it (a `wa_id`), unchanged."
    )


class ReplyContext(_Record):
    """What an incoming message says about another (Meta's `context`)."""

    message_id: str | None = Field(None, description="The message replied to (`context.id`).")
    from_number: str | None = Field(
        None, description="Who sent the message replied to (`context.from`), as sent.")
    forwarded: bool | None = Field(None, description="The customer forwarded this message.")
    frequently_forwarded: bool | None = Field(
        None, description="Forwarded more than five times along the way.")
    referred_catalog_id: str | None = Field(
        None, description="The catalog of the product the customer asks about.")
    referred_product_id: str | None = Field(
        None, description="The product's `product_retailer_id`.")


class Referral(_Record):
    """The ad or post that brought the customer (click-to-WhatsApp; Meta's `referral`)."""

    source_id: str | None = Field(None, description="The ad or post id.")
    source_type: str | None = Field(None, description="`ad` or `post`, as sent.")
    source_url: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = Field(None, description="`image` or `video`, as sent.")
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = Field(None, description="The click id, for conversion reports.")


class Group(_Record):
    """The WhatsApp group a message was sent in, or a status of a message sent to one."""

    id: str = Field(description="The group id (`group_id`, or a group status's `recipient_id`).")
    participant_number: str | None = Field(
        None, description="The participant who sent the message or whose status it is, "
        "E.164.")
    participant_wa_id: str | None = Field(None, description="The participant's id, as sent.")
    participant_user_id: str | None = Field(
        None, description="The participant's business-scoped user id.")
    participant_parent_user_id: str | None = None


Content = (
    TextContent | MediaContent | LocationContent | ContactsContent | InteractiveContent
    | ButtonContent | ReactionContent | OrderContent | SystemContent | EditContent
    | RevokeContent | UnknownMessageContent | StatusContent
)


# -- the event ------------------------------------------------------------------------


class Event(_Record):
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
    context: ReplyContext | None = Field(
        None, description="An incoming message's reply context: the message replied to, "
        "forwarding, a referred product.", exclude_if=lambda value: value is None)
    referral: Referral | None = Field(
        None, description="An incoming message's ad referral (click-to-WhatsApp).",
        exclude_if=lambda value: value is None)
    phone_number_id: str | None = Field(
        None, description="The business number's id (`metadata.phone_number_id`), needed to "
        "reply through the Cloud API.", exclude_if=lambda value: value is None)
    business_account_id: str | None = Field(
        None, description="The WhatsApp Business Account id (`entry[].id`).",
        exclude_if=lambda value: value is None)
    contact_wa_id: str | None = Field(
        None, description="The customer's WhatsApp id as sent (`wa_id`, `from`, "
        "`recipient_id`).", exclude_if=lambda value: value is None)
    contact_user_id: str | None = Field(
        None, description="The customer's business-scoped user id (`user_id`, "
        "`from_user_id`, `recipient_user_id`).", exclude_if=lambda value: value is None)
    contact_parent_user_id: str | None = Field(
        None, description="The parent business-scoped user id, when sent.",
        exclude_if=lambda value: value is None)
    contact_username: str | None = Field(
        None, description="The customer's WhatsApp username, when sent.",
        exclude_if=lambda value: value is None)
    group: Group | None = Field(
        None, description="The group of a group message or of a status of a message sent to "
        "a group.", exclude_if=lambda value: value is None)

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


def content_model(event_type: str) -> type[_Model]:
    """The content model of an event type (`message.image` is MediaContent)."""
    kind, _, name = event_type.partition(".")
    if kind == "status":
        return StatusContent
    if name in MEDIA_TYPES:
        return MediaContent
    return _MESSAGE_CONTENT.get(name, UnknownMessageContent)


_MESSAGE_CONTENT: dict[str, type[_Model]] = {
    "text": TextContent,
    "location": LocationContent,
    "contacts": ContactsContent,
    "interactive": InteractiveContent,
    "button": ButtonContent,
    "reaction": ReactionContent,
    "order": OrderContent,
    "system": SystemContent,
    "edit": EditContent,
    "revoke": RevokeContent,
    "unknown": UnknownMessageContent,
}


def event_types() -> list[str]:
    """Every event type with a topic of its own."""
    return [f"message.{name}" for name in MESSAGE_TYPES] + [f"status.{s}" for s in STATUSES]


class OptOutEvent(_Record):
    """A contact asked to stop receiving messages (topic `<prefix>.contact.optout`)."""

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this contract.")
    event_id: str = Field(description="`optout:<message id>` of the message that opted out, "
                          "or `optout:<event id>` of a marketing `stop` (contact.preferences).")
    type: Literal["contact.optout"] = "contact.optout"
    contact_number: str | None = Field(description="The customer's number, E.164.")
    contact_user_id: str | None = Field(
        None, description="The customer's business-scoped user id, where sent (the key of "
        "a customer who shares no number).", exclude_if=lambda value: value is None)
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
