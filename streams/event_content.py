"""The content of an event, one model per type, and the parts an event carries (pricing,
conversation, errors, reply context, ad referral, group): what `streams/events.py` publishes
inside `Event`. Content models are strict (`extra="forbid"`): that is how the `content`
union picks the model of each type. The parts ignore fields a later version adds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


def absent_when_none(description: str) -> Any:
    """An optional field added within a version: None by default, and then left out of the
    JSON, so events without it are byte for byte what they were."""
    return Field(None, description=description, exclude_if=_is_none)


def _is_none(value: object) -> bool:
    return value is None


class ContentModel(BaseModel):
    """The content of one event type: unknown fields are refused, which is how the
    `content` union picks the model of each type."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class OpenModel(BaseModel):
    """A record or part of one that no union chooses by its fields: fields a later version
    adds are ignored, not refused."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# -- type-specific content ------------------------------------------------------------


class TextContent(ContentModel):
    body: str = Field(description="The message text.")


class MediaContent(ContentModel):
    url: str | None = Field(None, description="Direct download link (Qikchat).")
    media_id: str | None = Field(None, description="Media id to fetch from Meta (Cloud API).")
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None
    sha256: str | None = None


class LocationContent(ContentModel):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ContactsContent(ContentModel):
    contacts: list[dict[str, Any]] = Field(description="Shared contact cards, as sent.")


class InteractiveContent(ContentModel):
    reply_type: str = Field(description="`button_reply`, `list_reply`, `nfm_reply` (a flow "
                            "reply) or another kind as sent.")
    reply_id: str | None = None
    title: str | None = None
    description: str | None = None
    # -- added within version 2: a flow reply's (`nfm_reply`); absent for other replies ---
    flow_name: str | None = absent_when_none(
        "The flow's `name` (`nfm_reply`; `title` holds it too, as before).")
    flow_response: dict[str, Any] | None = absent_when_none(
        "The flow's answers: `response_json` (a string on the wire) decoded, when it is a "
        "JSON object.")
    flow_response_text: str | None = absent_when_none(
        "`response_json` as sent, when it is not a JSON object (then `flow_response` is "
        "absent).")


class ButtonContent(ContentModel):
    payload: str | None = Field(None, description="Payload of the template quick-reply button.")
    text: str | None = None


class ReactionContent(ContentModel):
    emoji: str | None = Field(None, description="The emoji; empty or null removes a reaction.")
    reacted_message_id: str | None = Field(None, description="The message reacted to.")


class OrderContent(ContentModel):
    catalog_id: str | None = None
    text: str | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)


class SystemContent(ContentModel):
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


class EditContent(ContentModel):
    """The customer edited a message they sent."""

    original_message_id: str = Field(description="The message edited.")
    edited_type: str | None = Field(
        description="The edited message's type (`text`, `image`...), as sent.")
    edited: dict[str, Any] | None = Field(
        description="The new content, with the fields the content of `message.<edited_type>` "
        "has (a text's `body`, an image's `media_id` and `caption`...); null when the edit "
        "carries no usable content (it is in `raw`).")


class RevokeContent(ContentModel):
    """The customer deleted a message they sent."""

    original_message_id: str = Field(description="The message deleted.")


class UnknownMessageContent(ContentModel):
    original_type: str | None = Field(description="The `type` the provider sent, unchanged.")


class Pricing(OpenModel):
    """What WhatsApp charges for the message, as the status that carries it says."""

    billable: bool | None = Field(None, description="Whether the message is charged.")
    pricing_model: str | None = Field(None, description="`CBP`, `PMP`, ... as sent.")
    type: str | None = Field(
        None, description="`regular`, `free_customer_service`, `free_entry_point`, ... as sent."
    )
    category: str | None = Field(
        None, description="`marketing`, `utility`, `authentication`, `service`, ... as sent."
    )


class Conversation(OpenModel):
    """The conversation the message was sent in (Meta's conversation-based pricing)."""

    id: str | None = None
    expires_at: datetime | None = Field(
        None, description="When the conversation expires (`expiration_timestamp`), UTC."
    )
    origin_type: str | None = Field(
        None, description="`marketing`, `utility`, `service`, `referral_conversion`, ..."
    )


class StatusError(OpenModel):
    """One entry of a status's `errors` (or Qikchat's `error`)."""

    code: int | None = Field(None, description="The code, when it is an integer of 64 bits.")
    code_text: str | None = absent_when_none(
        "The code as sent, when it is not an integer of 64 bits.")
    title: str | None = None
    message: str | None = None
    details: str | None = Field(None, description="`error_data.details`, or `details`.")


class StatusContent(ContentModel):
    status: str = Field(description="sent, delivered, read, failed, played, deleted, or unknown.")
    original_status: str | None = Field(None, description="The provider's value when unknown.")
    error_code: int | None = Field(
        None, description="The provider's error code, when it is an integer of 64 bits."
    )
    error_code_text: str | None = absent_when_none(
        "The error code as sent, when it is not an integer of 64 bits (then `error_code` is "
        "null); absent otherwise.")
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


class ReplyContext(OpenModel):
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


class Referral(OpenModel):
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


class Group(OpenModel):
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


def content_model(event_type: str) -> type[ContentModel]:
    """The content model of an event type (`message.image` is MediaContent)."""
    kind, _, name = event_type.partition(".")
    if kind == "status":
        return StatusContent
    if name in MEDIA_TYPES:
        return MediaContent
    return _MESSAGE_CONTENT.get(name, UnknownMessageContent)


_MESSAGE_CONTENT: dict[str, type[ContentModel]] = {
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
