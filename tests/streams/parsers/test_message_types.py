"""Flow replies, system messages, edits and revokes (issue 16 §2), from Meta and Qikchat
bodies: right topic, right fields, valid against the topic's schema; malformed ones keep
their message."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

from streams.events import (
    EditContent,
    Event,
    InteractiveContent,
    RevokeContent,
    SystemContent,
    UnknownMessageContent,
)
from tests.streams.fixtures import event, events

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def _valid(found: Event) -> None:
    schema = json.loads((SCHEMAS / f"{found.type}.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(found.to_json()), schema)
    assert Event.from_json(found.to_json()) == found


def test_flow_reply_answers_as_an_object_and_the_flow_name() -> None:
    reply = events("meta-flow-reply")[0]
    assert reply.type == "message.interactive"
    assert reply.content == InteractiveContent(
        reply_type="nfm_reply", title="delivery_feedback", flow_name="delivery_feedback",
        flow_response={"delivery_slot": "evening", "rating": "5", "flow_token": "tok-ord-4411"})
    assert reply.context is not None and reply.context.message_id == "wamid.META.FLOWOUT1"
    assert orjson.loads(reply.to_json())["content"]["flow_response"]["rating"] == "5"
    _valid(reply)
    qikchat = event("qikchat-in-flow-reply")
    assert isinstance(qikchat.content, InteractiveContent)
    assert (qikchat.content.flow_name, qikchat.content.flow_response) == (
        "size_picker", {"size": "M", "flow_token": "qk-tok-1"})
    _valid(qikchat)


def test_flow_answers_that_are_no_json_object_are_kept_as_sent() -> None:
    not_json, array, missing = events("meta-flow-reply")[1:]
    assert isinstance(not_json.content, InteractiveContent)
    assert (not_json.content.flow_response, not_json.content.flow_response_text) == (
        None, "{not json")
    assert isinstance(array.content, InteractiveContent)
    assert (array.content.flow_response, array.content.flow_response_text) == (None, "[1, 2]")
    assert array.content.flow_name is None
    assert isinstance(missing.content, InteractiveContent)
    assert (missing.content.flow_name, missing.content.flow_response,
            missing.content.flow_response_text) == ("flow", None, None)
    for found in (not_json, array, missing):
        assert found.type == "message.interactive"
        _valid(found)


def test_other_interactive_replies_are_unchanged_on_the_wire() -> None:
    button = event("qikchat-in-interactive-button")
    assert not {"flow_name", "flow_response", "flow_response_text"} & set(
        orjson.loads(button.to_json())["content"])


def test_system_messages_number_and_identity_change() -> None:
    number, identity = events("meta-system")
    assert number.type == identity.type == "message.system"
    assert number.content == SystemContent(
        system_type="user_changed_number",
        body="Asha changed from 919876543210 to 919876500000", new_wa_id="919876500000",
        new_contact_number="+919876500000", previous_wa_id="919876543210")
    assert number.contact_number == "+919876543210"  # who changed: the old number
    assert identity.content == SystemContent(
        system_type="customer_identity_changed", body="User identity changed",
        identity_hash="Sm9zZWxpbg==", identity_acknowledged=True)
    qikchat = event("qikchat-in-system")
    assert isinstance(qikchat.content, SystemContent)
    assert qikchat.content.new_contact_number == "+919812300000"
    for found in (number, identity, qikchat):
        _valid(found)


def test_edit_and_revoke_name_the_message_they_change() -> None:
    text_edit, image_edit, revoke = events("meta-edit-revoke")
    assert (text_edit.type, image_edit.type, revoke.type) == (
        "message.edit", "message.edit", "message.revoke")
    assert text_edit.content == EditContent(original_message_id="wamid.META.ORIG1",
                                            edited_type="text",
                                            edited={"body": "Deliver after 6 pm please"})
    assert image_edit.content == EditContent(
        original_message_id="wamid.META.ORIG2", edited_type="image",
        edited={"url": None, "media_id": "2233445566", "mime_type": "image/jpeg",
                "caption": "the right receipt", "filename": None, "sha256": "c2hhMjU2"})
    assert revoke.content == RevokeContent(original_message_id="wamid.META.ORIG3")
    # Keyed by the customer, like their other messages: an edit follows what it edits.
    assert text_edit.key == revoke.key == b"+919900000001"
    qikchat_edit, qikchat_revoke = event("qikchat-in-edit"), event("qikchat-in-revoke")
    assert qikchat_edit.content == EditContent(original_message_id="wamid.QK.ORIG2",
                                               edited_type="text",
                                               edited={"body": "size L, not M"})
    assert qikchat_revoke.content == RevokeContent(original_message_id="wamid.QK.ORIG1")
    for found in (text_edit, image_edit, revoke, qikchat_edit, qikchat_revoke):
        _valid(found)


def test_malformed_edits_revokes_and_system_messages_keep_their_message() -> None:
    orphan_edit, empty_edit, bad_revoke, bad_system = events("meta-edit-revoke-malformed")
    # An edit or revoke of nothing: message.unknown, the whole message in raw.
    assert orphan_edit.type == bad_revoke.type == "message.unknown"
    assert orphan_edit.content == UnknownMessageContent(original_type="edit")
    assert bad_revoke.content == UnknownMessageContent(original_type="revoke")
    assert orphan_edit.raw["edit"]["message"]["text"]["body"] == "orphan"
    # An edit of a message, without usable new content: an edit, the content null.
    assert empty_edit.type == "message.edit"
    assert empty_edit.content == EditContent(original_message_id="wamid.META.ORIG4",
                                             edited_type=None, edited=None)
    # A system message whose `system` is no object: a system message with nothing known.
    assert bad_system.type == "message.system"
    assert bad_system.content == SystemContent(system_type=None)
    assert bad_system.raw["system"] == "changed"
    for found in (orphan_edit, empty_edit, bad_revoke, bad_system):
        _valid(found)
