"""Notices: what a webhook says that is neither an incoming message nor a message status.

Template reviews, account and phone-number updates, a customer's marketing preferences,
provider errors, calls and the messages the business sent from the WhatsApp Business app
(echoes). Each goes to a topic of its own, `<prefix>.<type>` (`NOTICE_TYPES`), as one
`NoticeEvent`, JSON, with a JSON Schema per type under `schemas/` (`streams/schemas.py`).

The envelope is shared by every type and mirrors `Event` where the two overlap (ids,
receipt, times, account, business and contact); `content` holds the type's own fields and
`raw` the provider object the notice was read from, unchanged. The same rules as `Event`
apply: new fields are optional, readers ignore fields they do not know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.events import SCHEMA_VERSION, StatusError

TEMPLATE_STATUS = "template.status"
ACCOUNT_UPDATE = "account.update"
CONTACT_PREFERENCES = "contact.preferences"
PROVIDER_ERROR = "provider.error"
CALL_CONNECT = "call.connect"
CALL_TERMINATE = "call.terminate"
CALL_STATUS = "call.status"
MESSAGE_ECHO = "message.echo"
NOTICE_TYPES = (TEMPLATE_STATUS, ACCOUNT_UPDATE, CONTACT_PREFERENCES, PROVIDER_ERROR,
                CALL_CONNECT, CALL_TERMINATE, CALL_STATUS, MESSAGE_ECHO)


class _Content(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TemplateStatusContent(_Content):
    """A message template's review, quality or category changed."""

    update: Literal["status", "quality", "category"] = Field(
        description="Which change: `status` (message_template_status_update), `quality` "
        "(message_template_quality_update) or `category` (template_category_update).")
    event: str | None = Field(None, description="`APPROVED`, `REJECTED`, `PAUSED`, "
                              "`DISABLED`, ... as sent (status updates).")
    template_id: str | None = Field(None, description="`message_template_id`, as text.")
    template_name: str | None = None
    language: str | None = Field(None, description="`message_template_language`, e.g. `en_US`.")
    category: str | None = Field(None, description="The template's category as sent.")
    reason: str | None = Field(None, description="`reason` (`NONE`, `INVALID_FORMAT`, ...).")
    rejection_detail: str | None = Field(None, description="`rejection_info.reason`.")
    recommendation: str | None = Field(None, description="`rejection_info.recommendation`.")
    previous_quality: str | None = Field(None, description="`previous_quality_score`.")
    new_quality: str | None = Field(None, description="`new_quality_score`.")
    previous_category: str | None = None
    new_category: str | None = None


class AccountUpdateContent(_Content):
    """The business account or one of its phone numbers changed (`field` says which)."""

    event: str | None = Field(None, description="`ACCOUNT_VIOLATION`, `FLAGGED`, "
                              "`APPROVED`, ... as sent.")
    display_phone_number: str | None = Field(None, description="The number concerned, E.164.")
    current_limit: str | None = Field(None, description="Messaging limit tier, e.g. `TIER_10K`.")
    violation_type: str | None = Field(None, description="`violation_info.violation_type`.")
    decision: str | None = Field(None, description="Account review decision, as sent.")
    requested_name: str | None = Field(None, description="`requested_verified_name`.")
    rejection_reason: str | None = None


class PreferencesContent(_Content):
    """A customer stopped or resumed a category of messages (`user_preferences`)."""

    wa_id: str | None = Field(None, description="The customer's WhatsApp id, as sent.")
    category: str | None = Field(None, description="`marketing_messages`, ... as sent.")
    value: str | None = Field(None, description="`stop` or `resume`, lower case.")
    detail: str | None = None


class ProviderErrorContent(_Content):
    """One entry of a change's `errors[]`: the provider could not deliver a webhook's
    content (unsupported payload, rate limit, ...)."""

    error: StatusError = Field(description="Code, title, message and details.")
    href: str | None = None
    message_ids: list[str] = Field(
        default_factory=list,
        description="Ids of the messages of the same change, when the errors came beside "
        "them (those messages are on their own topics).")


class CallContent(_Content):
    """A call: connected, terminated, or a status of a call the business placed."""

    call_id: str
    event: str = Field(description="`connect`, `terminate`, or `status`.")
    status: str | None = Field(None, description="Lower case: `ringing`, `accepted`, "
                               "`rejected`, `completed`, `failed`, ... as sent.")
    direction: str | None = Field(None, description="`USER_INITIATED` or "
                                  "`BUSINESS_INITIATED`, as sent.")
    from_number: str | None = Field(None, description="`from`, E.164 when it is a number.")
    to_number: str | None = Field(None, description="`to`, E.164 when it is a number.")
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: int | None = Field(None, description="`duration`, in seconds.")
    biz_opaque_callback_data: str | None = None
    errors: list[StatusError] = Field(default_factory=list)


class EchoContent(_Content):
    """A message the business sent from the WhatsApp Business app (`smb_message_echoes`)."""

    message_id: str
    message_type: str | None = Field(None, description="`text`, `image`, ... as sent.")
    to_number: str | None = Field(None, description="The recipient, E.164.")
    to_user_id: str | None = Field(None, description="The recipient's business-scoped id.")
    message: dict[str, Any] = Field(
        default_factory=dict,
        description="The content as an incoming message of that type carries it (a text's "
        "`body`, an image's `media_id`...); empty when the type is unknown.")


NoticeContent = (TemplateStatusContent | AccountUpdateContent | PreferencesContent
                 | ProviderErrorContent | CallContent | EchoContent)
CONTENT_MODELS: dict[str, type[_Content]] = {
    TEMPLATE_STATUS: TemplateStatusContent, ACCOUNT_UPDATE: AccountUpdateContent,
    CONTACT_PREFERENCES: PreferencesContent, PROVIDER_ERROR: ProviderErrorContent,
    CALL_CONNECT: CallContent, CALL_TERMINATE: CallContent, CALL_STATUS: CallContent,
    MESSAGE_ECHO: EchoContent,
}


class NoticeEvent(BaseModel):
    """One notice (topic `<prefix>.<type>`, e.g. `qikchat.template.status`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this contract.")
    event_id: str = Field(description="Deterministic from provider data, so that a resent "
                          "webhook gives the same id (see docs/topics.md per type).")
    type: str = Field(description="One of the notice types, e.g. `template.status`.")
    format: Literal["qikchat", "meta"] = Field(description="The body format it came in.")
    field: str | None = Field(description="Meta's change `field` (`account_update`, ...).")
    receipt_ids: list[str] = Field(description="Ingest receipt id(s) of the webhook(s).")
    received_at: datetime = Field(description="When ingest received the webhook (UTC).")
    occurred_at: datetime | None = Field(description="Provider time of the notice (UTC).")
    source: str = Field(description="Ingest source label, e.g. `qikchat`.")
    account: str = Field(description="Account label from the webhook URL, or empty.")
    business_account_id: str | None = Field(description="The WhatsApp Business Account id "
                                            "(`entry[].id`).")
    phone_number_id: str | None = Field(None, description="`metadata.phone_number_id`.")
    business_number: str | None = Field(description="The business's number, E.164.")
    contact_number: str | None = Field(description="The customer's number, E.164, when the "
                                       "notice concerns one.")
    content: NoticeContent = Field(description="Type-specific fields; shape depends on `type`.")
    raw: dict[str, Any] = Field(description="The provider object it was read from, unchanged.")

    @property
    def key(self) -> bytes:
        """Kafka key: the call id for calls, the contact for preferences and echoes, the
        template id for templates, else the business account (keeps each one's order)."""
        content = self.content
        if isinstance(content, CallContent):
            return content.call_id.encode()
        if isinstance(content, TemplateStatusContent) and content.template_id:
            return content.template_id.encode()
        if isinstance(content, PreferencesContent | EchoContent) and self.contact_number:
            return self.contact_number.encode()
        return (self.business_account_id or self.event_id).encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @model_validator(mode="before")
    @classmethod
    def _content_of_type(cls, data: Any) -> Any:
        """The content model is the type's, not whichever of the union fits first (several
        have only optional fields)."""
        if isinstance(data, dict) and isinstance(data.get("content"), dict):
            model = CONTENT_MODELS.get(data.get("type"))  # type: ignore[arg-type]
            if model is None:
                raise ValueError(f"unknown notice type {data.get('type')!r}")
            return {**data, "content": model.model_validate(data["content"])}
        return data

    @classmethod
    def from_json(cls, data: bytes | str) -> NoticeEvent:
        return cls.model_validate_json(data)


def is_notice_type(event_type: str) -> bool:
    return event_type in CONTENT_MODELS
