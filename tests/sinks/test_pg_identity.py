"""The business and contact ids, groups, edits, revokes and flow replies in PostgreSQL
(migration 0008), from both formats; events without them keep the columns null."""

from __future__ import annotations

import asyncpg

from streams.agents.optout import optout_event
from streams.contact_window import ContactWindow
from streams.event_facts import EventFacts
from streams.events import OptOutEvent, TextContent
from tests.sinks.harness import write_postgres
from tests.streams.fixtures import events

INBOUND = ("phone_number_id, business_account_id, contact, contact_wa_id, contact_user_id, "
           "contact_parent_user_id, contact_username, group_id, group_participant, type, "
           "text, original_message_id, flow_name, flow_response")
STATUS = "phone_number_id, business_account_id, contact_user_id, group_id, group_participant"


async def test_identity_group_edit_revoke_and_flow_columns(database_url: str) -> None:
    stored = [event for name in ("meta-identity", "meta-user-id-only", "meta-group",
                                 "meta-flow-reply", "meta-edit-revoke", "meta-system",
                                 "qikchat-in-identity", "qikchat-in-text")
              for event in events(name)]
    await write_postgres(database_url, stored)
    connection = await asyncpg.connect(database_url)
    try:
        inbound = {row["message_id"]: dict(row) for row in await connection.fetch(
            f"SELECT message_id, {INBOUND} FROM inbound_messages")}
        statuses = {row["message_id"]: dict(row) for row in await connection.fetch(
            f"SELECT message_id, {STATUS} FROM message_status_events")}
        by_user = await connection.fetch(
            "SELECT message_id FROM inbound_messages WHERE contact_user_id = $1 "
            "ORDER BY message_id", "IN.5522004411223344")
        flow_answer = await connection.fetchval(
            "SELECT flow_response ->> 'delivery_slot' FROM inbound_messages "
            "WHERE flow_name = 'delivery_feedback'")
    finally:
        await connection.close()
    identified = inbound["wamid.META.ID1"]
    assert (identified["phone_number_id"], identified["business_account_id"]) == (
        "410987654321098", "305812345678901")
    assert (identified["contact_wa_id"], identified["contact_user_id"],
            identified["contact_parent_user_id"], identified["contact_username"]) == (
        "919876543210", "IN.1873309224915530", "IN.ENT.7719012233445566", "asha.rao")
    assert statuses["wamid.META.OUT9"]["contact_user_id"] == "IN.1873309224915530"
    assert [row["message_id"] for row in by_user] == ["wamid.META.BSUID1", "wamid.META.BSUID2"]
    assert inbound["wamid.META.BSUID1"]["contact"] is None
    group = "Y2FwaV9ncm91cDo5MTgwNDEyMzQ1Njc6MTIwMzYz"
    assert (inbound["wamid.META.GRP1"]["group_id"],
            inbound["wamid.META.GRP1"]["group_participant"]) == (group, "+919811112222")
    # One row per (message, status): the first participant's read.
    assert (statuses["wamid.META.GOUT1"]["group_id"],
            statuses["wamid.META.GOUT1"]["group_participant"]) == (group, "+919811112222")
    assert flow_answer == "evening"
    assert (inbound["wamid.META.FLOW2"]["flow_name"],
            inbound["wamid.META.FLOW2"]["flow_response"]) == ("flow", None)
    edit, revoke = inbound["wamid.META.EDIT1"], inbound["wamid.META.REV1"]
    assert (edit["type"], edit["original_message_id"], edit["text"]) == (
        "edit", "wamid.META.ORIG1", "Deliver after 6 pm please")
    assert (revoke["type"], revoke["original_message_id"]) == ("revoke", "wamid.META.ORIG3")
    system = inbound["wamid.META.SYS1"]
    assert (system["type"], system["text"]) == (
        "system", "Asha changed from 919876543210 to 919876500000")
    qikchat = inbound["wamid.QK.ID1"]
    assert (qikchat["contact_username"], qikchat["group_id"]) == ("nisha_k", "Y2FwaV9ncm91cDpRSw")
    plain = inbound["wamid.TEXT1"]
    assert all(plain[name] is None for name in (
        "phone_number_id", "business_account_id", "contact_wa_id", "contact_user_id",
        "group_id", "original_message_id", "flow_name", "flow_response"))


async def test_a_customer_known_only_by_user_id_can_opt_out_and_has_a_window(
    database_url: str,
) -> None:
    """Their "STOP" is an opt-out keyed and stored by the user id, and their messages open a
    window under it: in the state the worker folds and in PostgreSQL alike."""
    first, second = events("meta-user-id-only")
    stop = second.model_copy(update={"content": TextContent(body="STOP")})
    optout = optout_event(stop)
    assert optout is not None
    assert (optout.contact_number, optout.contact_user_id, optout.key) == (
        None, "IN.5522004411223344", b"IN.5522004411223344")
    assert OptOutEvent.from_json(optout.to_json()) == optout
    window = ContactWindow.of_facts(EventFacts.of_routed_json(first.to_json()))
    assert window is not None and window.contact == "IN.5522004411223344"
    await write_postgres(database_url, [first, stop, optout])
    connection = await asyncpg.connect(database_url)
    try:
        opted_out = await connection.fetchval(
            "SELECT message_id FROM contact_optouts WHERE contact = $1", "IN.5522004411223344")
        last = await connection.fetchval(
            "SELECT last_message_id FROM contact_windows WHERE contact = $1",
            "IN.5522004411223344")
    finally:
        await connection.close()
    assert opted_out == stop.message_id
    assert last == stop.message_id
