"""The business and contact identity and groups on every event (`streams/parsers/_identity.py`),
from Meta and Qikchat bodies: right topic, right fields, valid against the topic's schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

from streams.events import Event, Group
from streams.parsers._identity import Contact, Contacts, message_contact
from tests.streams.fixtures import event, events

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def _valid(found: Event) -> None:
    schema = json.loads((SCHEMAS / f"{found.type}.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(found.to_json()), schema)


def test_meta_message_and_status_carry_the_business_and_contact_ids() -> None:
    message, status = events("meta-identity")
    assert (message.type, status.type) == ("message.text", "status.delivered")
    for found in (message, status):
        assert (found.phone_number_id, found.business_account_id) == (
            "410987654321098", "305812345678901")
        assert found.business_number == "+918041234567"
        assert (found.contact_number, found.contact_wa_id) == ("+919876543210", "919876543210")
        assert (found.contact_user_id, found.contact_parent_user_id) == (
            "IN.1873309224915530", "IN.ENT.7719012233445566")
        assert found.group is None
        _valid(found)
    assert (message.contact_name, message.contact_username) == ("Asha Rao", "asha.rao")
    assert message.key == b"+919876543210"


def test_a_message_without_from_is_keyed_by_its_business_scoped_user_id() -> None:
    first, second = events("meta-user-id-only")
    for found in (first, second):
        assert found.type == "message.text"
        assert (found.contact_number, found.contact_wa_id) == (None, None)
        assert found.contact_user_id == "IN.5522004411223344"
        assert found.contact_name == "Kabir"
        # One key for both: one partition, so the customer's messages keep their order.
        assert found.key == b"IN.5522004411223344"
        _valid(found)
    qikchat = event("qikchat-in-user-id-only")
    assert (qikchat.contact_number, qikchat.contact_user_id) == (None, "IN.5522004411223344")
    assert qikchat.key == b"IN.5522004411223344"
    _valid(qikchat)


def test_group_message_and_each_participants_status() -> None:
    message, read_1, read_2 = events("meta-group")
    group_id = "Y2FwaV9ncm91cDo5MTgwNDEyMzQ1Njc6MTIwMzYz"
    assert message.group == Group(id=group_id, participant_number="+919811112222",
                                  participant_wa_id="919811112222",
                                  participant_user_id="IN.2200110033")
    assert message.contact_number == "+919811112222"
    assert read_1.type == read_2.type == "status.read"
    assert read_1.group == Group(id=group_id, participant_number="+919811112222",
                                 participant_wa_id="919811112222",
                                 participant_user_id="IN.2200110033",
                                 participant_parent_user_id="IN.ENT.9900")
    assert read_2.group is not None and read_2.group.participant_number == "+919833334444"
    # A group is no contact: its id is not read as a phone number.
    assert (read_1.contact_number, read_1.contact_wa_id) == (None, None)
    # Two participants read the message: two statuses, not one and a copy.
    assert read_1.event_id == "wamid.META.GOUT1:read:IN.2200110033"
    assert read_2.event_id == "wamid.META.GOUT1:read:919833334444"
    for found in (message, read_1, read_2):
        _valid(found)


def test_qikchat_carries_the_ids_it_passes_on() -> None:
    found = event("qikchat-in-identity")
    assert (found.phone_number_id, found.business_account_id) == (
        "410987654321098", "305812345678901")
    assert (found.contact_number, found.contact_wa_id, found.contact_user_id,
            found.contact_parent_user_id, found.contact_username) == (
        "+919845012345", "919845012345", "IN.3344556677", "IN.ENT.1", "nisha_k")
    assert found.group is not None and found.group.id == "Y2FwaV9ncm91cDpRSw"
    _valid(found)


def test_events_without_them_are_unchanged_on_the_wire() -> None:
    plain = event("qikchat-in-text")
    wire = orjson.loads(plain.to_json())
    assert not {"phone_number_id", "business_account_id", "contact_wa_id", "contact_user_id",
                "contact_parent_user_id", "contact_username", "group"} & set(wire)
    grouped = events("meta-group")[1]
    assert Event.from_json(grouped.to_json()) == grouped


def test_malformed_ids_are_left_out() -> None:
    contacts = Contacts({"contacts": [{"wa_id": ["x"], "user_id": 7, "profile": "Asha"},
                                      "not an object"]})
    # One entry, and a message that names nobody: that entry (its user id as text).
    assert message_contact({"id": "m"}, contacts) == Contact(user_id="7")
    assert message_contact({"from": {"a": 1}, "from_user_id": ""}, Contacts({})) == Contact()
    two = Contacts({"contacts": [{"user_id": "A"}, {"user_id": "B"}]})
    assert message_contact({"id": "m"}, two) == Contact()  # which one is unknown: neither
