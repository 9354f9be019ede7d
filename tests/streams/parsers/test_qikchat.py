"""The Qikchat envelope parser, fixture by fixture."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streams.events import (
    Conversation,
    Pricing,
    StatusContent,
    StatusError,
    TextContent,
    UnknownMessageContent,
)
from streams.parsers import Unrecognised
from tests.streams.fixtures import (
    ACCOUNT,
    DIRECTORY,
    RECEIPT_ID,
    RECEIVED_AT_MS,
    event,
    parse,
)


def test_text_message_fills_every_common_field() -> None:
    text = event("qikchat-in-text")
    assert text.type == "message.text"
    assert text.kind == "message"
    assert text.format == "qikchat"
    assert text.event_id == text.message_id == "wamid.TEXT1"
    assert text.content == TextContent(body="Is my order #4411 shipped? 🙏")
    assert text.contact_number == "+919876543210"
    assert text.contact_name == "Asha Rao"
    assert text.business_number == "+918041234567"
    assert text.occurred_at == datetime(2026, 11, 20, 9, 15, 2, 412000, tzinfo=UTC)
    assert text.received_at == datetime.fromtimestamp(RECEIVED_AT_MS / 1000, UTC)
    assert text.receipt_ids == [RECEIPT_ID]
    assert text.source == "qikchat"
    assert text.account == ACCOUNT
    body = orjson.loads((DIRECTORY / "qikchat-in-text.json").read_bytes())
    assert text.raw == body["payload"]["message"]


def test_extra_fields_epoch_timestamp_and_loose_numbers() -> None:
    extra = event("qikchat-in-extra-fields")
    assert extra.content == TextContent(body="hi")
    assert extra.contact_number == "+919876543210"
    assert extra.contact_name is None  # "" is no name
    assert extra.business_number == "+918041234567"
    assert extra.occurred_at == datetime.fromtimestamp(1763643302, UTC)
    assert extra.raw["new_field"] == [1, 2]


def test_missing_fields_fall_back_and_stay_none() -> None:
    bare = event("qikchat-in-missing-fields")
    assert bare.message_id == bare.event_id == "QK-FALLBACK-1"  # payload.id
    assert bare.type == "message.unknown"
    assert bare.content == UnknownMessageContent(original_type=None)
    assert bare.contact_number is None
    assert bare.contact_name is None
    assert bare.business_number is None
    assert bare.occurred_at is None


def test_wrapped_envelope_parses_like_the_plain_one() -> None:
    wrapped = event("qikchat-wrapped-text")
    assert wrapped.type == "message.text"
    assert wrapped.content == TextContent(body="wrapped hello")
    assert wrapped.message_id == "wamid.WRAPPED1"


@pytest.mark.parametrize(
    ("name", "status", "occurred"),
    [
        ("qikchat-status-sent", "sent", datetime(2026, 11, 20, 12, 52, 26, 101000, tzinfo=UTC)),
        ("qikchat-status-delivered", "delivered",
         datetime(2026, 11, 20, 12, 52, 27, 930000, tzinfo=UTC)),
        # readAt carries +05:30: the same instant in UTC, not lastUpdatedAt.
        ("qikchat-status-read", "read", datetime(2026, 11, 20, 12, 52, 40, tzinfo=UTC)),
    ],
)
def test_status_is_dated_by_its_own_timestamp(name: str, status: str, occurred: datetime) -> None:
    update = event(name)
    assert update.kind == "status"
    assert update.type == f"status.{status}"
    assert update.event_id == f"QKS-1:{status}"
    assert update.message_id == "QKS-1"
    assert update.occurred_at == occurred
    assert update.contact_number == "+918080808080"
    assert isinstance(update.content, StatusContent)
    assert update.content.status == status
    assert update.content.sent_at == datetime(2026, 11, 20, 12, 52, 26, 101000, tzinfo=UTC)
    assert update.raw["id"] == "QKS-1"  # the whole payload: id and contacts included


def test_failed_status_carries_the_error() -> None:
    failed = event("qikchat-status-failed")
    assert failed.type == "status.failed"
    assert failed.event_id == "QKS-2:failed"
    assert failed.contact_number == "+918080808099"
    assert failed.occurred_at == datetime(2026, 11, 20, 12, 55, 3, 512000, tzinfo=UTC)
    detail = "Receiver is incapable of receiving this message"
    assert failed.content == StatusContent(
        status="failed", error_code=131026, error_title="Message undeliverable",
        error_detail=detail, recipient_id="918080808099",
        errors=[StatusError(code=131026, title="Message undeliverable", details=detail)])


def test_a_status_carries_pricing_and_conversation_when_qikchat_forwards_them() -> None:
    sent = event("qikchat-status-sent")
    assert isinstance(sent.content, StatusContent)
    assert sent.content.pricing == Pricing(billable=True, pricing_model="PMP", type="regular",
                                           category="marketing")
    assert sent.content.conversation == Conversation(id="c0ffee12", origin_type="marketing")
    assert (sent.content.pricing_category, sent.content.conversation_id) == ("marketing",
                                                                              "c0ffee12")
    # Bodies without them (the other fixtures) leave them empty.
    delivered = event("qikchat-status-delivered")
    assert isinstance(delivered.content, StatusContent)
    assert (delivered.content.pricing, delivered.content.conversation) == (None, None)
    assert delivered.content.errors == []


def test_unknown_status_keeps_the_original_value() -> None:
    unknown = event("qikchat-status-unknown")
    assert unknown.type == "status.unknown"
    assert unknown.event_id == "QKS-3:unknown:warning"
    assert unknown.content == StatusContent(status="unknown", original_status="warning",
                                            recipient_id="+918080808080")
    # lastUpdatedAt is null, so processedAt dates it.
    assert unknown.occurred_at == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("qikchat-unknown-event", "whatsapp:template:status"),
        ("qikchat-no-payload", "payload"),
        ("qikchat-no-message", "payload.message"),
        ("qikchat-no-id", "payload.id"),
    ],
)
def test_unusable_envelopes_are_unrecognised_with_a_reason(name: str, says: str) -> None:
    outcome = parse(name)
    assert isinstance(outcome, Unrecognised)
    assert says in outcome.reason
