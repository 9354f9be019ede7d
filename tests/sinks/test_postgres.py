"""PostgresSink on the real PostgreSQL: idempotent, order-independent upserts."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from sinks.base import PoisonRecordError, SinkRecord, StoreUnavailableError
from sinks.postgres import PostgresSink
from streams.events import Event, OptOutEvent
from tests._ports import free_port
from tests.sinks.events import T0, image_message, optout, status, text_message

OUTBOUND_STATE = ("status, failed, error_code, error_title, sent_at, delivered_at, read_at, "
                  "failed_at, updated_at, contact, account")


def records(events: Sequence[Event | OptOutEvent]) -> list[SinkRecord]:
    return [SinkRecord("test", 0, offset, event) for offset, event in enumerate(events)]


def lifecycle(message_id: str) -> list[Event]:
    return [
        status(message_id, "sent", at=T0),
        status(message_id, "delivered", at=T0 + timedelta(seconds=4)),
        status(message_id, "read", at=T0 + timedelta(seconds=30)),
        status(message_id, "failed", at=T0 + timedelta(seconds=40), error_code=131047,
               error_title="Re-engagement message"),
    ]


async def test_outbound_state_is_the_same_whatever_the_order_and_repeats(
    database_url: str,
) -> None:
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        orders = list(itertools.permutations(range(4)))
        for n, order in enumerate(orders):
            one_by_one, batched = f"single-{n}", f"batch-{n}"
            events = lifecycle(one_by_one)
            for index in [*order, order[0]]:  # every order, plus a repeat
                await sink.write(records([events[index]]))
            events = lifecycle(batched)
            await sink.write(records([events[index] for index in [*order, *order]]))
    finally:
        await sink.close()
    connection = await asyncpg.connect(database_url)
    try:
        states = await connection.fetch(f"SELECT DISTINCT {OUTBOUND_STATE} FROM outbound_messages")
        rows = await connection.fetchval("SELECT count(*) FROM outbound_messages")
        status_rows = await connection.fetchval("SELECT count(*) FROM message_status_events")
    finally:
        await connection.close()
    assert rows == 2 * len(orders)
    assert status_rows == 4 * rows
    assert len(states) == 1
    state = states[0]
    assert (state["status"], state["failed"], state["error_code"]) == ("read", True, 131047)
    assert state["sent_at"] == T0
    assert state["delivered_at"] == T0 + timedelta(seconds=4)
    assert state["read_at"] == T0 + timedelta(seconds=30)
    assert state["failed_at"] == T0 + timedelta(seconds=40)
    assert state["updated_at"] == T0 + timedelta(seconds=40)


async def test_status_times_in_the_content_fill_the_outbound_row(database_url: str) -> None:
    read = status("m-1", "read", at=T0 + timedelta(minutes=9),
                  sent_at=T0, delivered_at=T0 + timedelta(minutes=1))
    unknown = status("m-2", "unknown", at=T0)
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        await sink.write(records([read, unknown]))
    finally:
        await sink.close()
    connection = await asyncpg.connect(database_url)
    try:
        outbound = await connection.fetch("SELECT * FROM outbound_messages")
        statuses = await connection.fetch(
            "SELECT message_id, status FROM message_status_events ORDER BY message_id")
    finally:
        await connection.close()
    assert [(row["message_id"], row["status"], row["sent_at"], row["delivered_at"],
             row["read_at"]) for row in outbound] == [
        ("m-1", "read", T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=9))]
    assert [tuple(row) for row in statuses] == [("m-1", "read"), ("m-2", "unknown")]


async def test_duplicates_give_one_row_and_the_earliest_optout_wins(database_url: str) -> None:
    later, earlier = (optout("stop-2", "+919811111111", at=T0 + timedelta(hours=1)),
                      optout("stop-1", "+919811111111", at=T0))
    image = image_message("img-1")
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        await sink.write(records([image, text_message("t-1"), later]))
        await sink.write(records([image, text_message("t-1"), earlier, later]))
    finally:
        await sink.close()
    connection = await asyncpg.connect(database_url)
    try:
        inbound = await connection.fetch(
            "SELECT message_id, type, media_url, mime_type, caption FROM inbound_messages "
            "ORDER BY message_id")
        optouts = await connection.fetch("SELECT message_id, opted_out_at FROM contact_optouts")
    finally:
        await connection.close()
    assert [tuple(row) for row in inbound] == [
        ("img-1", "image", "https://cdn.example/img-1.jpg", "image/jpeg", "look"),
        ("t-1", "text", None, None, None),
    ]
    assert [tuple(row) for row in optouts] == [("stop-1", T0)]


async def test_a_record_postgresql_rejects_is_poison(database_url: str) -> None:
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        with pytest.raises(PoisonRecordError, match="SQLSTATE 22"):
            await sink.write(records([text_message("ok"),
                                      status("huge", "failed", error_code=2**70)]))
        # The failed batch wrote nothing, not even its good record.
        connection = await asyncpg.connect(database_url)
        try:
            assert await connection.fetchval("SELECT count(*) FROM inbound_messages") == 0
        finally:
            await connection.close()
    finally:
        await sink.close()


async def test_an_unreachable_server_is_retriable() -> None:
    sink = PostgresSink(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(StoreUnavailableError, match="will retry") as raised:
        await sink.setup()
    assert raised.value.retriable
    await sink.close()


def _batchings(count: int) -> list[list[int]]:
    """Every way to cut `count` events into consecutive batches, as lists of batch sizes."""
    cuts = itertools.product((False, True), repeat=count - 1)
    result = []
    for cut in cuts:
        sizes, size = [], 1
        for is_cut in cut:
            if is_cut:
                sizes.append(size)
                size = 1
            else:
                size += 1
        result.append([*sizes, size])
    return result


def _callbacks(message_id: str) -> list[Event]:
    """One message's callbacks as a provider sends them: an unknown account and an empty
    error title first, resends with other times, a failure after the read."""
    return [
        status(message_id, "sent", at=T0).model_copy(update={"account": ""}),
        status(message_id, "delivered", at=T0 + timedelta(seconds=5)),
        status(message_id, "failed", at=T0 + timedelta(seconds=9), error_code=131047,
               error_title=""),
        status(message_id, "delivered", at=T0 + timedelta(seconds=3)),
        status(message_id, "read", at=T0 + timedelta(seconds=30)),
        status(message_id, "failed", at=T0 + timedelta(seconds=8), error_code=131026,
               error_title="Message undeliverable"),
    ]


async def test_outbound_row_does_not_depend_on_where_batches_split(database_url: str) -> None:
    batchings = _batchings(len(_callbacks("m")))
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        for n, sizes in enumerate(batchings):
            events, start = _callbacks(f"split-{n}"), 0
            for size in sizes:
                await sink.write(records(events[start:start + size]))
                start += size
    finally:
        await sink.close()
    connection = await asyncpg.connect(database_url)
    try:
        states = await connection.fetch(f"SELECT DISTINCT {OUTBOUND_STATE} FROM outbound_messages")
        rows = await connection.fetchval("SELECT count(*) FROM outbound_messages")
    finally:
        await connection.close()
    assert rows == len(batchings) == 32
    assert len(states) == 1, states
    (state,) = states
    assert state["account"] == "acme"  # the first known account, not the empty one
    assert (state["error_code"], state["error_title"]) == (131047, "Message undeliverable")
    assert state["status"] == "read" and state["failed"]
    assert state["delivered_at"] == T0 + timedelta(seconds=3)


async def test_text_with_nul_is_stored_with_a_stand_in_and_the_rest_as_sent(
    database_url: str,
) -> None:
    sink = PostgresSink(database_url)
    await sink.setup()
    nul = text_message("nul-1", body="stop\x00now")
    nul = nul.model_copy(update={"raw": {"text": {"body": "stop\x00now"}, "\x00key": 1}})
    try:
        await sink.write(records([nul, text_message("after-1"),
                                  status("big-code", "failed", error_code=9_999_999_999,
                                         error_title="big\x00code")]))
    finally:
        await sink.close()
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT text, raw->'text'->>'body' AS raw_body, content->>'body' AS body "
            "FROM inbound_messages WHERE message_id = 'nul-1'")
        after = await connection.fetchval("SELECT count(*) FROM inbound_messages "
                                          "WHERE message_id = 'after-1'")
        code = await connection.fetchrow("SELECT error_code, error_title FROM outbound_messages "
                                         "WHERE message_id = 'big-code'")
    finally:
        await connection.close()
    assert row is not None and after == 1 and code is not None
    assert row["text"] == row["raw_body"] == row["body"] == "stop\u2400now"
    assert (code["error_code"], code["error_title"]) == (9_999_999_999, "big\u2400code")


async def test_year_one_and_year_9999_are_times_not_infinities(database_url: str) -> None:
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        await sink.write(records([text_message("y1", at=first, received_at=T0),
                                  text_message("y9999", at=last, received_at=T0)]))
    finally:
        await sink.close()
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT message_id, occurred_at::text AS at, "
                                      "isfinite(occurred_at) AS finite FROM inbound_messages "
                                      "ORDER BY message_id")
    finally:
        await connection.close()
    assert [(r["message_id"], r["finite"]) for r in rows] == [("y1", True), ("y9999", True)]
    assert rows[0]["at"].startswith("0001-01-01 00:00:00.000001")
    assert rows[1]["at"].startswith("9999-12-31 23:59:59.999998")
