"""The PostgreSQL sink and the stream agents apply one set of rules: every order and
repetition of a message's statuses (and of a contact's messages) gives the same state in
`outbound_messages` (`contact_windows`) as the agent publishes on `message.state`
(`contact.window`), whether the sink writes them one by one or in one batch."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg

from sinks.base import SinkRecord
from sinks.postgres import PostgresSink
from streams._state_table import Fold
from streams.agents import contact_window, message_state
from streams.contact_window import ContactWindow
from streams.event_facts import EventFacts
from streams.events import Event, StatusContent
from streams.outbound_state import MERGE_RULES, OutboundState
from tests.sinks.events import T0, status, text_message

State = TypeVar("State")
WINDOW_FIELDS = ("opened_at", "last_incoming_at", "closes_at", "last_message_id")


def lifecycle(message_id: str) -> list[Event]:
    sent = status(message_id, "sent", at=T0)
    assert isinstance(sent.content, StatusContent)
    sent = sent.model_copy(update={"content": sent.content.model_copy(
        update={"pricing_category": "marketing"})})
    return [
        sent,
        status(message_id, "delivered", at=T0 + timedelta(seconds=4)),
        status(message_id, "read", at=T0 + timedelta(seconds=30)),
        status(message_id, "failed", at=T0 + timedelta(seconds=40), error_code=131047,
               error_title="Re-engagement message"),
    ]


def conversation(message_id: str) -> list[Event]:
    """One contact's messages: a window, a late one reaching into it, an old one."""
    hours = [0, 1, -0.5, -30, 0.25]
    return [text_message(f"{message_id}-{n}", at=T0 + timedelta(hours=h),
                         received_at=T0 + timedelta(hours=2))
            for n, h in enumerate(hours)]


def agent_state(fold: Fold[State], events: Sequence[Event]) -> State:
    state: State | None = None
    for event in events:
        # What dedup's fold reads: the event's facts, from the JSON the router wrote.
        state = fold(state, EventFacts.of_routed_json(event.to_json())) or state
    assert state is not None
    return state


def records(events: Sequence[Event]) -> list[SinkRecord]:
    return [SinkRecord("test", 0, offset, event) for offset, event in enumerate(events)]


async def _stored(database_url: str, query: str) -> dict[str, Any]:
    connection = await asyncpg.connect(database_url)
    try:
        return {row[0]: dict(row) for row in await connection.fetch(query)}
    finally:
        await connection.close()


async def write_both_ways(sink: PostgresSink, one_by_one: list[Event],
                          batched: list[Event]) -> None:
    """Write `one_by_one` as a batch per event and `batched` as one batch."""
    for event in one_by_one:
        await sink.write(records([event]))
    await sink.write(records(batched))


def _sequences(count: int) -> list[list[int]]:
    """Every order of `count` items, each with its first item repeated at the end."""
    return [[*order, order[0]] for order in itertools.permutations(range(count))]


async def fold_and_store(database_url: str, statuses: Callable[[str], list[Event]]
                         ) -> tuple[dict[str, OutboundState], dict[str, dict[str, Any]]]:
    """Every order (and a repeat) of the `statuses` of a message, folded by the agent and
    written by the sink one by one and as one batch: the agent's states and the rows, by
    message id, after checking that they agree in every field."""
    sink = PostgresSink(database_url)
    await sink.setup()
    expected: dict[str, OutboundState] = {}
    try:
        for n, order in enumerate(_sequences(4)):
            ways = [[statuses(f"{way}-{n}")[index] for index in order]
                    for way in ("single", "batch")]
            for events in ways:
                expected[events[0].message_id] = agent_state(message_state.fold, events)
            await write_both_ways(sink, *ways)
    finally:
        await sink.close()
    columns = ", ".join(MERGE_RULES)
    stored = await _stored(database_url, f"SELECT message_id, {columns}, callbacks, status "
                                         "FROM outbound_messages")
    assert len(stored) == len(expected) == 2 * 24
    for message_id, state in expected.items():
        row = stored[message_id]
        assert {name: row[name] for name in MERGE_RULES} == {
            name: getattr(state, name) for name in MERGE_RULES}, message_id
        assert (row["callbacks"], row["status"]) == (state.callbacks, state.status)
    return expected, stored


async def test_every_order_and_repeat_of_statuses_gives_the_agents_state(
    database_url: str,
) -> None:
    expected, _ = await fold_and_store(database_url, lifecycle)
    for state in expected.values():
        assert state.callbacks == 4
        assert state.status == "read" and state.failed


async def test_every_order_of_a_contacts_messages_gives_the_agents_window(
    database_url: str,
) -> None:
    sink = PostgresSink(database_url)
    await sink.setup()
    expected: dict[str, ContactWindow] = {}
    try:
        for n, order in enumerate(_sequences(5)):
            ways = [[conversation(f"{way}-{n}")[index].model_copy(
                update={"contact_number": f"+91{n:05d}{way}"}) for index in order]
                for way in (0, 1)]
            for events in ways:
                expected[str(events[0].contact_number)] = agent_state(contact_window.fold,
                                                                      events)
            await write_both_ways(sink, *ways)
    finally:
        await sink.close()
    stored = await _stored(database_url, "SELECT contact, account, "
                           f"{', '.join(WINDOW_FIELDS)} FROM contact_windows")
    assert len(stored) == len(expected) == 2 * 120
    for contact, window in expected.items():
        row = stored[contact]
        assert {name: row[name] for name in WINDOW_FIELDS} == {
            name: getattr(window, name) for name in WINDOW_FIELDS}, contact
        assert window.opened_at == T0 - timedelta(minutes=30)
        assert window.closes_at == T0 + timedelta(hours=25)


def voice_lifecycle(message_id: str) -> list[Event]:
    """A voice message: sent, delivered, played, read (a client may report either last)."""
    return [
        status(message_id, "sent", at=T0),
        status(message_id, "delivered", at=T0 + timedelta(seconds=4)),
        status(message_id, "played", at=T0 + timedelta(seconds=50)),
        status(message_id, "read", at=T0 + timedelta(seconds=30)),
    ]


async def test_played_ranks_with_read_in_every_order_in_both_consumers(
    database_url: str,
) -> None:
    expected, _ = await fold_and_store(database_url, voice_lifecycle)
    for state in expected.values():
        assert (state.status, state.callbacks) == ("read", 3)
        assert state.played_at == T0 + timedelta(seconds=50)
        assert state.read_at == T0 + timedelta(seconds=30)
        assert OutboundState.from_json(state.to_json()) == state
