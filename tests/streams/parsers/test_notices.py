"""Notices of Meta bodies (`streams/parsers/_notices.py`), one test per shape: the topic
(type), the fields, the key, and the checked-in schema of the topic; then what is
malformed, and ids that a resend keeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson
import pytest

from ingest.record import RawRecord
from streams.events import StatusContent, StatusError, UnknownMessageContent
from streams.notices import (
    AccountUpdateContent,
    CallContent,
    EchoContent,
    NoticeEvent,
    PreferencesContent,
    ProviderErrorContent,
    TemplateStatusContent,
)
from streams.parsers import Parsed, Unrecognised, parse_raw
from tests.streams.fixtures import ACCOUNT, RECEIPT_ID, parse

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
CONTACT = "+919876543210"


def notices(name: str, notice_type: str) -> list[NoticeEvent]:
    """The notices of a fixture, each checked against the schema of its topic."""
    outcome = parse(name)
    assert isinstance(outcome, Parsed), outcome
    schema = json.loads((SCHEMAS / f"{notice_type}.schema.json").read_text(encoding="utf-8"))
    for notice in outcome.notices:
        assert notice.type == notice_type
        jsonschema.validate(json.loads(notice.to_json()), schema)
        assert notice.receipt_ids == [RECEIPT_ID] and notice.account == ACCOUNT
        assert NoticeEvent.from_json(notice.to_json()) == notice
    return outcome.notices


def test_a_template_approval() -> None:
    (approved,) = notices("meta-template-approved", "template.status")
    assert approved.content == TemplateStatusContent(
        update="status", event="APPROVED", template_id="1689556908129832",
        template_name="order_shipped", language="en_US", category="UTILITY", reason="NONE")
    assert approved.key == b"1689556908129832"
    assert approved.field == "message_template_status_update"
    assert approved.business_account_id == "102290129340398"
    assert approved.occurred_at == datetime.fromtimestamp(1763643600, UTC)
    assert approved.event_id.startswith("template.status:")


def test_a_template_rejection_says_why() -> None:
    (rejected,) = notices("meta-template-rejected", "template.status")
    content = rejected.content
    assert isinstance(content, TemplateStatusContent)
    assert (content.event, content.reason, content.language) == ("REJECTED", "INVALID_FORMAT",
                                                                 "hi")
    assert content.rejection_detail == ("Parameters are next to each other without text "
                                        "between them.")
    assert content.recommendation == "Separate parameters with descriptive text."


def test_template_quality_and_category_changes() -> None:
    (quality,) = notices("meta-template-quality", "template.status")
    (category,) = notices("meta-template-category", "template.status")
    assert quality.content == TemplateStatusContent(
        update="quality", template_id="806312974732579", template_name="welcome",
        language="en_US", previous_quality="GREEN", new_quality="YELLOW")
    assert category.content == TemplateStatusContent(
        update="category", template_id="12345678", template_name="cart_reminder",
        language="en", previous_category="UTILITY", new_category="MARKETING")


def test_account_and_phone_number_updates() -> None:
    (violation,) = notices("meta-account-violation", "account.update")
    (quality,) = notices("meta-phone-quality", "account.update")
    (name,) = notices("meta-phone-name", "account.update")
    assert violation.content == AccountUpdateContent(event="ACCOUNT_VIOLATION",
                                                     violation_type="SCAM")
    assert quality.content == AccountUpdateContent(
        event="FLAGGED", display_phone_number="+918041234567", current_limit="TIER_10K")
    assert name.content == AccountUpdateContent(
        display_phone_number="+918041234567", decision="APPROVED", requested_name="Acme Stores")
    assert {n.field for n in (violation, quality, name)} == {
        "account_update", "phone_number_quality_update", "phone_number_name_update"}
    assert violation.key == b"102290129340398"
    assert len({violation.event_id, quality.event_id, name.event_id}) == 3


def test_marketing_preferences() -> None:
    stop, resume = notices("meta-user-preferences", "contact.preferences")
    assert stop.content == PreferencesContent(
        wa_id="919876543210", category="marketing_messages", value="stop",
        detail="User requested to stop marketing messages")
    assert (stop.contact_number, stop.key) == (CONTACT, CONTACT.encode())
    assert stop.event_id == "preferences:919876543210:marketing_messages:stop:1763643700"
    assert stop.occurred_at == datetime.fromtimestamp(1763643700, UTC)
    assert stop.phone_number_id == "106540352242922"
    assert stop.business_number == "+918041234567"
    assert isinstance(resume.content, PreferencesContent) and resume.content.value == "resume"
    assert resume.contact_number == "+919811111111"


def test_errors_beside_a_message_are_a_notice_and_the_message_still_an_event() -> None:
    outcome = parse("meta-errors-beside-message")
    assert isinstance(outcome, Parsed)
    (message,) = outcome.events
    assert message.type == "message.unknown"
    assert message.content == UnknownMessageContent(original_type="interactive")
    (error,) = notices("meta-errors-beside-message", "provider.error")
    assert error.content == ProviderErrorContent(
        error=StatusError(code=131000, title="Something went wrong",
                          message="Something went wrong", details="Unsupported webhook payload"),
        message_ids=["wamid.META.IN20"])


def test_errors_alone_are_one_notice_each() -> None:
    rate, odd = notices("meta-errors-only", "provider.error")
    assert isinstance(rate.content, ProviderErrorContent)
    assert (rate.content.error.code, rate.content.error.title) == (130429, "Rate limit hit")
    assert rate.content.error.details == "Cloud API message throughput has been reached."
    assert isinstance(odd.content, ProviderErrorContent)
    assert (odd.content.error.code, odd.content.error.code_text) == (None, "E-17")
    assert rate.event_id != odd.event_id
    assert rate.content.message_ids == []


def test_a_call_connects() -> None:
    (connect,) = notices("meta-call-connect", "call.connect")
    assert connect.content == CallContent(
        call_id="wacid.META.CALL2", event="connect", direction="USER_INITIATED",
        from_number=CONTACT, to_number="+918041234567")
    assert (connect.event_id, connect.key) == ("wacid.META.CALL2:connect", b"wacid.META.CALL2")
    assert connect.contact_number == CONTACT
    assert connect.raw["session"]["sdp_type"] == "offer"


def test_a_call_terminates_with_its_length_and_an_error_beside_it() -> None:
    outcome = parse("meta-call-terminate")
    assert isinstance(outcome, Parsed) and not outcome.events
    call, error = outcome.notices
    for notice in (call, error):
        schema = json.loads((SCHEMAS / f"{notice.type}.schema.json").read_text("utf-8"))
        jsonschema.validate(json.loads(notice.to_json()), schema)
    assert call.type == "call.terminate" and error.type == "provider.error"
    assert call.content == CallContent(
        call_id="wacid.META.CALL3", event="terminate", status="completed",
        direction="BUSINESS_INITIATED", from_number="+918041234567", to_number=CONTACT,
        started_at=datetime.fromtimestamp(1763643580, UTC),
        ended_at=datetime.fromtimestamp(1763643700, UTC), duration_s=120,
        biz_opaque_callback_data="callback-8")
    # A business-initiated call: the customer is the one called.
    assert call.contact_number == CONTACT
    assert isinstance(error.content, ProviderErrorContent)
    assert error.content.error.code == 138006


def test_call_statuses_are_not_message_statuses() -> None:
    ringing, accepted = notices("meta-call-status", "call.status")
    assert ringing.content == CallContent(
        call_id="wacid.META.CALL1", event="status", status="ringing",
        biz_opaque_callback_data="callback-7")
    assert ringing.event_id == "wacid.META.CALL1:status:ringing"
    assert accepted.event_id == "wacid.META.CALL1:status:accepted"
    assert ringing.key == accepted.key == b"wacid.META.CALL1"
    assert ringing.contact_number == CONTACT
    outcome = parse("meta-call-status")
    assert isinstance(outcome, Parsed) and outcome.events == []


def test_business_app_echoes_are_outgoing_messages() -> None:
    text, image = notices("meta-echo", "message.echo")
    assert text.content == EchoContent(
        message_id="wamid.META.ECHO1", message_type="text", to_number=CONTACT,
        to_user_id="IN.13491208655302741918", message={"body": "Your order ships today"})
    assert (text.event_id, text.key) == ("echo:wamid.META.ECHO1", CONTACT.encode())
    assert isinstance(image.content, EchoContent)
    assert image.content.message["media_id"] == "1479537139650973"
    assert image.content.message["caption"] == "Invoice"


@pytest.mark.parametrize(("name", "status"), [("meta-status-played-deleted", "played"),
                                              ("qikchat-status-played", "played")])
def test_played_is_a_status_of_its_own_in_both_formats(name: str, status: str) -> None:
    outcome = parse(name)
    assert isinstance(outcome, Parsed)
    played = outcome.events[0]
    assert played.type == "status.played"
    assert isinstance(played.content, StatusContent)
    assert (played.content.status, played.content.original_status) == ("played", None)
    schema = json.loads((SCHEMAS / "status.played.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(played.to_json()), schema)


def test_deleted_is_a_status_of_its_own() -> None:
    outcome = parse("meta-status-played-deleted")
    assert isinstance(outcome, Parsed)
    deleted = outcome.events[1]
    assert (deleted.type, deleted.event_id) == ("status.deleted", "wamid.META.IN9:deleted")
    schema = json.loads((SCHEMAS / "status.deleted.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(deleted.to_json()), schema)


def test_malformed_notices_give_nothing_and_the_body_goes_to_unknown() -> None:
    outcome = parse("meta-notices-malformed")
    assert outcome == Unrecognised(
        "meta: none of the 7 messages, statuses or notices is an object with what identifies "
        "it and an id of at most 1024 bytes")


def test_a_usable_notice_is_kept_beside_malformed_ones() -> None:
    body = json.loads(Path(__file__).resolve().parents[1].joinpath(
        "fixtures", "meta-notices-malformed.json").read_text(encoding="utf-8"))
    body["entry"][0]["changes"][0]["value"]["message_template_id"] = 77
    outcome = parse_raw(RawRecord(orjson.dumps(body), "r-1", 1_763_643_200_000))
    assert isinstance(outcome, Parsed)
    (template,) = outcome.notices
    assert isinstance(template.content, TemplateStatusContent)
    assert template.content.template_id == "77"


def test_digest_ids_are_the_same_for_a_resend_and_differ_for_another_update() -> None:
    body = (Path(__file__).resolve().parents[1] / "fixtures"
            / "meta-template-approved.json").read_bytes()
    first = parse_raw(RawRecord(body, "r-1", 1_763_643_200_000))
    resent = parse_raw(RawRecord(body, "r-2", 1_763_643_900_000))
    paused = parse_raw(RawRecord(body.replace(b'"APPROVED"', b'"PAUSED"'), "r-3",
                                 1_763_643_900_000))
    assert isinstance(first, Parsed) and isinstance(resent, Parsed)
    assert isinstance(paused, Parsed)
    assert first.notices[0].event_id == resent.notices[0].event_id
    assert first.notices[0].event_id != paused.notices[0].event_id


def test_an_account_update_of_other_documented_fields_is_kept_whole_in_raw() -> None:
    value = {"max_daily_conversation_per_phone": 1000, "max_phone_numbers_per_business": 2}
    body = orjson.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "7", "time": 1763643600, "changes": [
            {"field": "business_capability_update", "value": value}]}]})
    outcome = parse_raw(RawRecord(body, "r-1", 1_763_643_200_000))
    assert isinstance(outcome, Parsed)
    (update,) = outcome.notices
    assert (update.type, update.field, update.raw) == (
        "account.update", "business_capability_update", value)
    assert update.content == AccountUpdateContent()
