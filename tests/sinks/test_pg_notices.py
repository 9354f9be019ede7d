"""The PostgreSQL sink's notices (`sinks/_pg_notices.py`): every notice in `notices`,
template updates in `template_events`, the latest preference per category, and a
marketing `resume` ending an opt-out whatever order the two arrive in; `played` and
`deleted` statuses in the outbound state (`sinks/postgres.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from ingest.record import RawRecord
from sinks.base import SinkRecord
from sinks.postgres import PostgresSink
from streams.agents.optout import preference_optout
from streams.events import Event, OptOutEvent
from streams.notices import NoticeEvent
from streams.parsers import Parsed, parse_raw
from tests.sinks.events import T0, status
from tests.streams.fixtures import names, parse

CONTACT = "+919876543210"


def records(events: Sequence[Event | OptOutEvent | NoticeEvent]) -> list[SinkRecord]:
    return [SinkRecord("test", 0, offset, event) for offset, event in enumerate(events)]


def preference(value: str, at: datetime, wa_id: str = "919876543210") -> NoticeEvent:
    body = orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": "7", "changes": [
        {"field": "user_preferences", "value": {"user_preferences": [
            {"wa_id": wa_id, "category": "marketing_messages", "value": value,
             "detail": f"User requested to {value} marketing messages",
             "timestamp": int(at.timestamp())}]}}]}]})
    outcome = parse_raw(RawRecord(body, f"r-{value}", int(at.timestamp() * 1000) + 500,
                                  account="acme"))
    assert isinstance(outcome, Parsed)
    (notice,) = outcome.notices
    return notice


def stop_and_optout(at: datetime) -> list[NoticeEvent | OptOutEvent]:
    stop = preference("stop", at)
    optout = preference_optout(stop)
    assert optout is not None
    return [stop, optout]


async def write(database_url: str, *batches: Sequence[Event | OptOutEvent | NoticeEvent]
                ) -> None:
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        for batch in batches:
            await sink.write(records(batch))
    finally:
        await sink.close()


async def fetch(database_url: str, query: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        return [dict(row) for row in await connection.fetch(query)]
    finally:
        await connection.close()


async def test_every_fixture_notice_is_stored_once_and_templates_in_their_table(
    database_url: str,
) -> None:
    notices = [notice for name in names() if isinstance(outcome := parse(name), Parsed)
               for notice in outcome.notices]
    await write(database_url, notices, notices[:5])  # a resent batch changes nothing
    stored = await fetch(database_url, "SELECT type, count(*) AS n FROM notices GROUP BY type")
    assert {row["type"]: row["n"] for row in stored} == {
        "template.status": 4, "account.update": 3, "contact.preferences": 2,
        "provider.error": 4, "call.connect": 1, "call.terminate": 1, "call.status": 2,
        "message.echo": 2}
    templates = await fetch(database_url, "SELECT * FROM template_events ORDER BY occurred_at")
    assert [(t["update"], t["event"], t["template_name"], t["language"]) for t in templates] == [
        ("status", "APPROVED", "order_shipped", "en_US"),
        ("status", "REJECTED", "diwali_sale", "hi"),
        ("quality", None, "welcome", "en_US"),
        ("category", None, "cart_reminder", "en")]
    rejected, quality, category = templates[1], templates[2], templates[3]
    assert (rejected["template_id"], rejected["reason"], rejected["category"]) == (
        "1689556908129835", "INVALID_FORMAT", "MARKETING")
    assert rejected["rejection_detail"].startswith("Parameters are next to each other")
    assert (quality["previous_quality"], quality["new_quality"]) == ("GREEN", "YELLOW")
    assert (category["previous_category"], category["new_category"]) == ("UTILITY", "MARKETING")
    assert rejected["occurred_at"] == datetime.fromtimestamp(1763643610, UTC)
    calls = await fetch(database_url, "SELECT contact, content FROM notices "
                                      "WHERE type = 'call.terminate'")
    assert calls[0]["contact"] == CONTACT
    assert orjson.loads(calls[0]["content"])["duration_s"] == 120


async def test_the_latest_preference_of_a_category_wins_whatever_the_order(
    database_url: str,
) -> None:
    stop, resume = preference("stop", T0), preference("resume", T0 + timedelta(hours=1))
    await write(database_url, [resume], [stop])
    rows = await fetch(database_url, "SELECT * FROM contact_preferences")
    assert [(r["contact"], r["category"], r["value"], r["changed_at"]) for r in rows] == [
        (CONTACT, "marketing_messages", "resume", T0 + timedelta(hours=1))]


async def test_a_marketing_stop_is_an_opt_out_and_a_later_resume_ends_it_in_any_order(
    database_url: str,
) -> None:
    stop = stop_and_optout(T0)
    resume = [preference("resume", T0 + timedelta(hours=1))]
    # Stop then resume; resume then stop (the opt-out late); both in one batch.
    await write(database_url, stop, resume)
    assert await fetch(database_url, "SELECT * FROM contact_optouts") == []
    await write(database_url, resume, stop)
    assert await fetch(database_url, "SELECT * FROM contact_optouts") == []
    await write(database_url, [*stop, *resume])
    assert await fetch(database_url, "SELECT * FROM contact_optouts") == []
    # A stop after the resume opts out again.
    await write(database_url, stop_and_optout(T0 + timedelta(hours=2)))
    (row,) = await fetch(database_url, "SELECT * FROM contact_optouts")
    assert (row["contact"], row["matched"], row["opted_out_at"]) == (
        CONTACT, "marketing_messages", T0 + timedelta(hours=2))
    assert row["text"] == "User requested to stop marketing messages"


async def test_played_ranks_with_read_and_deleted_moves_no_state(database_url: str) -> None:
    played_at = T0 + timedelta(minutes=5)
    await write(database_url, [
        status("voice-1", "sent", at=T0), status("voice-1", "played", at=played_at),
        status("voice-1", "delivered", at=T0 + timedelta(seconds=3)),
        status("in-1", "deleted", at=T0)])
    (voice,) = await fetch(database_url, "SELECT * FROM outbound_messages")
    assert (voice["message_id"], voice["status"], voice["status_rank"]) == ("voice-1", "read", 3)
    assert (voice["played_at"], voice["read_at"], voice["callbacks"]) == (played_at, None, 2)
    statuses = await fetch(database_url, "SELECT message_id, status FROM message_status_events "
                                         "ORDER BY message_id, status")
    assert [(s["message_id"], s["status"]) for s in statuses] == [
        ("in-1", "deleted"), ("voice-1", "delivered"), ("voice-1", "played"),
        ("voice-1", "sent")]
