"""The Qikchat envelope parser, fixture by fixture."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streams.events import (
    ButtonContent,
    ContactsContent,
    InteractiveContent,
    LocationContent,
    MediaContent,
    OrderContent,
    ReactionContent,
    StatusContent,
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


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qikchat-in-image", MediaContent(
            url="https://media.example.invalid/m/1/photo.jpg", mime_type="image/jpeg",
            caption="damaged box", sha256="abc123")),
        ("qikchat-in-video", MediaContent(
            url="https://media.example.invalid/m/2/clip.mp4", mime_type="video/mp4")),
        ("qikchat-in-audio", MediaContent(
            url="https://media.example.invalid/m/3/voice.ogg",
            mime_type="audio/ogg; codecs=opus")),
        ("qikchat-in-document", MediaContent(
            url="https://media.example.invalid/m/4/invoice.pdf", mime_type="application/pdf",
            filename="invoice-4411.pdf", caption="my invoice")),
        ("qikchat-in-sticker", MediaContent(
            url="https://media.example.invalid/m/5/s.webp", mime_type="image/webp")),
    ],
)
def test_media_messages(name: str, expected: MediaContent) -> None:
    media = event(name)
    assert media.type == "message." + name.removeprefix("qikchat-in-")
    assert media.content == expected


def test_location_accepts_numeric_strings() -> None:
    location = event("qikchat-in-location")
    assert location.type == "message.location"
    assert location.content == LocationContent(
        latitude=12.9716, longitude=77.5946, name="Home", address="MG Road, Bengaluru")


def test_contacts_keep_the_cards_as_sent() -> None:
    contacts = event("qikchat-in-contacts")
    assert contacts.type == "message.contacts"
    assert isinstance(contacts.content, ContactsContent)
    assert contacts.content.contacts[0]["name"]["formatted_name"] == "Ravi K"
    assert contacts.contact_number == "+919876543210"  # the customer, not the card


def test_interactive_replies() -> None:
    assert event("qikchat-in-interactive-button").content == InteractiveContent(
        reply_type="button_reply", reply_id="track_order", title="Track order")
    assert event("qikchat-in-interactive-list").content == InteractiveContent(
        reply_type="list_reply", reply_id="size_m", title="Medium", description="Chest 38-40 in")


def test_button_reaction_order() -> None:
    assert event("qikchat-in-button").content == ButtonContent(
        payload="CONFIRM_COD", text="Yes, confirm")
    reaction = event("qikchat-in-reaction")
    assert reaction.type == "message.reaction"
    assert reaction.content == ReactionContent(emoji="👍", reacted_message_id="wamid.OUT42")
    order = event("qikchat-in-order")
    assert isinstance(order.content, OrderContent)
    assert order.content.catalog_id == "cat-77"
    assert order.content.text == "please deliver fast"
    assert [item["product_retailer_id"] for item in order.content.items] == ["sku-1", "sku-2"]


def test_unknown_type_keeps_the_type_it_claimed() -> None:
    unknown = event("qikchat-in-unknown-type")
    assert unknown.type == "message.unknown"
    assert unknown.content == UnknownMessageContent(original_type="unsupported")
    assert unknown.raw["errors"][0]["code"] == 131051


def test_text_without_a_body_is_unknown_not_empty() -> None:
    no_body = event("qikchat-in-text-no-body")
    assert no_body.type == "message.unknown"
    assert no_body.content == UnknownMessageContent(original_type="text")


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
    assert failed.content == StatusContent(
        status="failed", error_code=131026, error_title="Message undeliverable",
        error_detail="Receiver is incapable of receiving this message")


def test_unknown_status_keeps_the_original_value() -> None:
    unknown = event("qikchat-status-unknown")
    assert unknown.type == "status.unknown"
    assert unknown.event_id == "QKS-3:unknown:deleted"
    assert unknown.content == StatusContent(status="unknown", original_status="deleted")
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
