"""The Meta Cloud API parser: several events per body, malformed items skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.record import RawRecord
from streams.events import (
    MAX_ID_BYTES,
    Conversation,
    MediaContent,
    Pricing,
    ReactionContent,
    StatusContent,
    StatusError,
    SystemContent,
    TextContent,
)
from streams.parsers import Parsed, Unrecognised, parse_raw
from tests.streams.fixtures import RECEIPT_ID, events, parse


def test_messages_from_every_entry_in_order() -> None:
    parsed = events("meta-messages")
    assert [e.type for e in parsed] == [
        "message.text", "message.image", "message.reaction", "message.system"]
    assert all(e.format == "meta" and e.kind == "message" for e in parsed)
    assert all(e.business_number == "+918041234567" for e in parsed)
    assert all(e.receipt_ids == [RECEIPT_ID] for e in parsed)
    text, image, reaction, unknown = parsed
    assert text.event_id == text.message_id == "wamid.META.T1"
    assert text.content == TextContent(body="hello from meta")
    assert text.occurred_at == datetime.fromtimestamp(1763643146, UTC)
    assert text.raw["text"] == {"body": "hello from meta"}


def test_contact_name_matches_by_wa_id() -> None:
    text, image, reaction, _ = events("meta-messages")
    assert (text.contact_number, text.contact_name) == ("+919876543210", "Asha Rao")
    assert (image.contact_number, image.contact_name) == ("+919900000001", "Vikram")
    assert reaction.contact_name == "Asha Rao"


def test_message_contents() -> None:
    _, image, reaction, system = events("meta-messages")
    assert image.content == MediaContent(
        media_id="1479537139650973", mime_type="image/jpeg", sha256="Z2V0IGEgbGlmZQ==",
        caption="receipt")
    assert reaction.content == ReactionContent(emoji="❤️", reacted_message_id="wamid.META.OUT1")
    # A number change without the new `wa_id`: still a system message, the id null.
    assert system.content == SystemContent(system_type="user_changed_number",
                                           body="changed number")


def test_statuses() -> None:
    parsed = events("meta-statuses")
    assert [e.event_id for e in parsed] == [
        "wamid.META.OUT1:sent", "wamid.META.OUT1:delivered", "wamid.META.OUT1:read",
        "wamid.META.OUT2:failed", "wamid.META.OUT3:unknown:warning"]
    assert [e.type for e in parsed] == [
        "status.sent", "status.delivered", "status.read", "status.failed", "status.unknown"]
    sent, delivered, read, failed, unknown = parsed
    assert sent.contact_number == "+919876543210"
    assert sent.content == StatusContent(
        status="sent", conversation_id="6ceb9d929c1e", pricing_category="utility",
        sent_at=datetime.fromtimestamp(1763643146, UTC),
        pricing=Pricing(billable=True, pricing_model="PMP", type="regular", category="utility"),
        conversation=Conversation(id="6ceb9d929c1e",
                                  expires_at=datetime.fromtimestamp(1763729546, UTC),
                                  origin_type="utility"),
        biz_opaque_callback_data="campaign-42", recipient_id="919876543210")
    assert isinstance(delivered.content, StatusContent)
    assert delivered.content.delivered_at == delivered.occurred_at
    assert read.occurred_at == datetime.fromtimestamp(1763643190, UTC)  # an int timestamp
    detail = ("Message failed to send because more than 24 hours have passed since the "
              "customer last replied.")
    assert failed.content == StatusContent(
        status="failed", error_code=131047, error_title="Re-engagement message",
        error_detail=detail, recipient_id="919900000001",
        errors=[StatusError(code=131047, title="Re-engagement message",
                            message="Re-engagement message", details=detail),
                StatusError(code_text="E-RELAY", title="Relay rejected")])
    assert unknown.content == StatusContent(status="unknown", original_status="warning",
                                            recipient_id="919900000001")
    assert unknown.raw["status"] == "warning"


def test_malformed_items_are_skipped_when_others_parse() -> None:
    (only,) = events("meta-partly-malformed")
    assert only.message_id == "wamid.META.OK1"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("meta-all-malformed", "none of the 3"),
        ("meta-no-events", "no messages, statuses or notices"),
        ("meta-notices-malformed", "none of the 7"),
    ],
)
def test_bodies_without_a_usable_event_are_unrecognised(name: str, says: str) -> None:
    outcome = parse(name)
    assert isinstance(outcome, Unrecognised)
    assert says in outcome.reason


def test_a_status_whose_event_id_is_too_long_is_skipped_like_one_without_an_id() -> None:
    def body(*ids: str) -> bytes:
        return orjson.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [
            {"value": {"statuses": [{"id": i, "status": "read"} for i in ids]}}]}]})

    long_id = "w" * MAX_ID_BYTES  # with ":read" the event id is past the limit
    outcome = parse_raw(RawRecord(body("wamid.OK", long_id), "r-1", 1_763_643_200_000))
    assert isinstance(outcome, Parsed)
    assert [e.event_id for e in outcome.events] == ["wamid.OK:read"]
    alone = parse_raw(RawRecord(body(long_id), "r-1", 1_763_643_200_000))
    assert alone == Unrecognised("meta: none of the 1 messages, statuses or notices is an "
                                 "object with what identifies it and an id of at most "
                                 f"{MAX_ID_BYTES} bytes")
