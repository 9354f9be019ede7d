"""Routing through a real worker: every outcome of parse_raw lands in its topic, once."""

from __future__ import annotations

from collections import Counter

import orjson

from ingest.record import RECEIPT_ID
from streams import headers as names
from streams.events import Event
from tests.streams._worker import event_id, header
from tests.streams.conftest import (
    AFTER_BOOM,
    DUPLICATE_STATUS,
    DUPLICATE_TEXT,
    JSON_ARRAY,
    NEAR_MISS,
    NOT_JSON,
    RoutingRun,
)


def test_every_event_lands_in_the_topic_of_its_type(routing_run: RoutingRun) -> None:
    routed = {event_id(r): r.topic for r in routing_run.events}
    assert routed == {
        eid: routing_run.topics.event(etype) for eid, etype in routing_run.expected_events.items()
    }


def test_keys_are_the_contact_for_messages_and_the_message_id_for_statuses(
    routing_run: RoutingRun,
) -> None:
    for record in routing_run.events:
        event = Event.from_json(record.value)
        assert record.key == event.key
        if event.kind == "status":
            assert record.key == event.message_id.encode()
        elif event.contact_number:
            assert record.key == event.contact_number.encode()


def test_routed_records_carry_ingest_and_event_headers(routing_run: RoutingRun) -> None:
    for record in routing_run.events:
        event = Event.from_json(record.value)
        assert header(record, names.EVENT_ID) == event.event_id
        assert header(record, names.EVENT_TYPE) == event.type
        assert header(record, RECEIPT_ID) in event.receipt_ids


def test_copies_of_one_event_are_routed_once_and_counted(routing_run: RoutingRun) -> None:
    counts = Counter(event_id(r) for r in routing_run.events)
    assert counts["wamid.DUP1"] == 1
    assert counts["OUTDUP1:delivered"] == 1
    # Each was sent twice with different receipt ids; the second copy of each is dropped.
    assert routing_run.bodies.count(DUPLICATE_TEXT) == 2
    assert routing_run.bodies.count(DUPLICATE_STATUS) == 2
    assert routing_run.metrics["qikflow_streams_deduplicated_events_total"] >= 2
    assert [eid for eid, n in counts.items() if n > 1] == []


def test_json_that_is_no_event_goes_to_unknown_with_a_reason(routing_run: RoutingRun) -> None:
    assert sorted(r.value for r in routing_run.unknown) == sorted(routing_run.expected_unknown)
    for record in routing_run.unknown:
        assert header(record, names.REASON)
        assert header(record, RECEIPT_ID)


def test_bodies_that_are_not_json_objects_go_to_the_dlq_unchanged(
    routing_run: RoutingRun,
) -> None:
    from_router = [r for r in routing_run.dlq if header(r, names.FAILED_AGENT) == names.ROUTER]
    assert sorted(r.value for r in from_router) == sorted(routing_run.expected_undecodable)
    assert {NOT_JSON, JSON_ARRAY} <= {r.value for r in from_router}
    for record in from_router:
        assert header(record, names.REASON) == "undecodable"
        assert header(record, names.ERROR)
        assert header(record, RECEIPT_ID)
        assert header(record, names.SOURCE_TOPIC) == routing_run.topics.raw


def test_an_agent_that_raises_dead_letters_the_event_and_the_worker_goes_on(
    routing_run: RoutingRun,
) -> None:
    failed = [r for r in routing_run.dlq if header(r, names.FAILED_AGENT) == "failing"]
    assert len(failed) == 1
    record = failed[0]
    assert "BoomError: boom in wamid.BOOM1" in (header(record, names.ERROR) or "")
    assert Event.from_json(record.value).event_id == "wamid.BOOM1"  # the event, unchanged
    assert header(record, names.SOURCE_TOPIC) == routing_run.topics.event("message.text")
    assert routing_run.metrics['qikflow_streams_agent_failures_total{agent="failing"}'] == 1
    # Events after the failure are still routed, and the opt-out agent still ran on them.
    assert "wamid.AFTER1" in {event_id(r) for r in routing_run.events}
    assert "optout:wamid.AFTER1" in {orjson.loads(r.value)["event_id"] for r in routing_run.optout}
    assert AFTER_BOOM in routing_run.bodies


def test_opt_outs_are_emitted_for_stop_texts_only(routing_run: RoutingRun) -> None:
    emitted = {orjson.loads(r.value)["event_id"] for r in routing_run.optout}
    assert emitted == routing_run.expected_optouts
    assert "optout:wamid.STOP1" in emitted
    assert "optout:wamid.NEAR1" not in emitted
    assert NEAR_MISS in routing_run.bodies
