"""Message contents (`streams/parsers/_content.py`): every kind builds its content model, and
a kind without usable content becomes `message.unknown`, keeping the type it claimed.

Qikchat copies Meta's message objects, so the Qikchat fixtures show every kind; the Meta
parser hands the same objects to the same builders (tests/streams/parsers/test_meta.py).
"""

from __future__ import annotations

import orjson
import pytest

from ingest.record import RawRecord
from streams.events import (
    MAX_ID_BYTES,
    ButtonContent,
    ContactsContent,
    Event,
    InteractiveContent,
    LocationContent,
    MediaContent,
    OrderContent,
    ReactionContent,
    StatusContent,
    UnknownMessageContent,
)
from streams.parsers import Parsed, parse_raw
from streams.parsers._content import id_too_long, status_event_id, status_name
from tests.streams.fixtures import event


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


@pytest.mark.parametrize(
    ("value", "status", "original"),
    [
        ("delivered", "delivered", None),
        (" READ ", "read", None),
        ("warning", "unknown", "warning"), ("played", "played", None), ("DELETED", "deleted", None),
        (None, "unknown", None),
        ({"status": "sent"}, "unknown", None),
    ],
)
def test_status_names_are_normalised_or_unknown_with_the_original(
    value: object, status: str, original: str | None
) -> None:
    assert status_name(value) == (status, original)


def test_unknown_statuses_of_one_message_keep_distinct_event_ids() -> None:
    assert status_event_id("M1", "read", None) == "M1:read"
    assert status_event_id("M1", "unknown", "deleted") == "M1:unknown:deleted"
    assert status_event_id("M1", "unknown", "expired") == "M1:unknown:expired"
    assert status_event_id("M1", "unknown", None) == "M1:unknown:"


def _failed_status(code: object) -> bytes:
    """A failed Qikchat status whose error code is `code` (bytes: its JSON text as sent)."""
    sent = code if isinstance(code, bytes) else orjson.dumps(code)
    return (b'{"event":"whatsapp:message:status","payload":{"id":"QKS-9","message":'
            b'{"status":"failed","error":{"code":' + sent + b',"title":"Undeliverable"}}}}')


@pytest.mark.parametrize(
    ("code", "error_code", "error_code_text"),
    [
        (131026, 131026, None),
        ("131026", 131026, None),
        (-(2**63), -(2**63), None),
        (2**63 - 1, 2**63 - 1, None),
        # Past 64 bits: orjson and PostgreSQL `bigint` refuse the number; the text stays.
        (2**63, None, "9223372036854775808"),
        ("12345678901234567890123", None, "12345678901234567890123"),
        (b"12345678901234567890123", None, "1.2345678901234568e+22"),  # a JSON number
        ("9" * 5000, None, "9" * 5000),  # more digits than int() takes from a string
        ("E-131", None, "E-131"),
        (1.5, None, "1.5"),
        (True, None, None),
        ({"nested": 1}, None, None),
    ],
)
def test_error_codes_beyond_64_bits_or_not_integers_keep_their_text(
    code: object, error_code: int | None, error_code_text: str | None
) -> None:
    outcome = parse_raw(RawRecord(_failed_status(code), "r-1", 1_763_643_200_000))
    assert isinstance(outcome, Parsed)
    (failed,) = outcome.events
    assert isinstance(failed.content, StatusContent)
    assert (failed.content.error_code, failed.content.error_code_text) == (
        error_code, error_code_text)
    assert failed.content.error_title == "Undeliverable"
    # The event travels: it encodes, and a consumer reads it back unchanged.
    assert Event.from_json(failed.to_json()) == failed


def test_a_code_that_fits_publishes_no_error_code_text_field() -> None:
    outcome = parse_raw(RawRecord(_failed_status(131026), "r-1", 1_763_643_200_000))
    assert isinstance(outcome, Parsed)
    assert "error_code_text" not in orjson.loads(outcome.events[0].to_json())["content"]


@pytest.mark.parametrize(
    ("event_id", "too_long"),
    [("wamid.1", False), ("é" * 512, False), ("é" * 513, True), ("x" * 1024, False),
     ("x" * 1025, True)],
)
def test_an_event_id_is_too_long_past_max_id_bytes_of_utf8(event_id: str, too_long: bool) -> None:
    assert MAX_ID_BYTES == 1024
    assert id_too_long(event_id) is too_long
