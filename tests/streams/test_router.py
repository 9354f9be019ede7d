"""The router (stage 1) through a real worker: every outcome of parse_raw lands in its
topic, refused outputs dead-letter their raw record, workers share the raw partitions, and
hostile bodies end in one outcome while what follows them is routed."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import orjson

from ingest.record import RECEIPT_ID
from qikflow.topics import Topics
from streams import headers as names
from streams._keyed import read_keyed
from streams.events import Event, StatusContent, TextContent
from streams.settings import StreamsSettings
from tests.streams._worker import (
    WorkerCluster,
    event_id,
    header,
    read,
    routed_ids,
    send_raw,
    status_body,
    text_body,
    traffic,
    uncommitted,
)
from tests.streams.conftest import (
    BIG_UNKNOWN,
    JSON_ARRAY,
    LARGE_MESSAGES,
    NOT_JSON,
    LiveWorker,
    RefusedRun,
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


def test_events_beyond_the_default_bundle_size_travel_in_several_keyed_records(
    routing_run: RoutingRun, kafka_bootstrap: str
) -> None:
    limit = StreamsSettings.model_fields["keyed_bundle_max_bytes"].default
    keyed = read(kafka_bootstrap, rf"^{routing_run.topics.prefix}\.streams\.keyed$",
                 LARGE_MESSAGES)
    assert max(len(record.value) for record in keyed) <= limit
    holding = [record for record in keyed
               if any(e.event_id.startswith("wamid.LARGE") for e in read_keyed(record))]
    assert len(holding) >= 2
    large = {f"wamid.LARGE{n}" for n in range(LARGE_MESSAGES)}
    assert large <= {event_id(r) for r in routing_run.events}


def test_a_raw_record_whose_output_the_broker_refuses_is_dead_lettered(
    refused_run: RefusedRun,
) -> None:
    record = refused_run.dead_letter(names.ROUTER)
    # The raw body, byte for byte, with why and where.
    assert record.value == BIG_UNKNOWN
    assert header(record, names.REASON) == "undeliverable"
    # The error is the client's last one: MessageSizeTooLarge, or NotLeaderForPartition
    # when a busy broker had no leader for the new topic before the producer gave up.
    assert header(record, names.ERROR)
    assert header(record, names.SOURCE_TOPIC) == refused_run.topics.raw
    # The worker goes on, and routes what the broker accepts as usual.
    assert refused_run.went_on
    assert [event_id(r) for r in refused_run.routed] == ["OUTSMALL1:delivered"]


def test_two_workers_split_the_partitions_and_a_rebalance_loses_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path)
    before, expected_before = traffic(2000, "before")
    after, expected_after = traffic(2000, "after")
    try:
        first = cluster.start(0)
        second = cluster.start(1)
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, before))
        seen_before = routed_ids(kafka_bootstrap, topic_prefix, len(expected_before))
        raw_read = [w.metrics()["qikflow_streams_raw_records_total"] for w in (first, second)]
        # Both workers read raw partitions, and copies that sat in partitions of different
        # workers still met in one dedup partition: every event exactly once.
        assert all(n > 0 for n in raw_read), raw_read
        assert sum(raw_read) >= len(before)
        assert seen_before == Counter(expected_before)

        assert second.stop() == 0  # leaves the group: its partitions move to the first
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, after))
        seen = routed_ids(kafka_bootstrap, topic_prefix, len(expected_before | expected_after))
        # A graceful stop commits everything it routed: the next start repeats nothing.
        assert first.stop() == 0
        assert asyncio.run(uncommitted(kafka_bootstrap, topics.router_group, topics.raw)) == 0
        assert asyncio.run(uncommitted(kafka_bootstrap, topics.streams_group, topics.keyed)) == 0
    finally:
        cluster.stop_all()
    missing = (expected_before | expected_after) - set(seen)
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    # The copies sent after the rebalance are dropped by the table the first worker took over.
    assert {eid: n for eid, n in seen.items() if eid in expected_after and n > 1} == {}


def test_a_23_digit_error_code_is_routed_with_its_text(live: LiveWorker) -> None:
    body = orjson.dumps({"event": "whatsapp:message:status", "payload": {
        "id": f"OUT{uuid.uuid4().hex}", "message": {
            "status": "failed", "error": {"code": "12345678901234567890123", "title": "?"}}}})
    (outcome,) = live.followed_by_a_normal_text([body])
    content = Event.from_json(outcome.only(live.topics.event("status.failed")).value).content
    assert isinstance(content, StatusContent)
    assert (content.error_code, content.error_code_text) == (None, "12345678901234567890123")


def test_a_message_nested_230_levels_goes_to_unknown_with_the_reason(
    live: LiveWorker,
) -> None:
    nested: object = "deep"
    for _ in range(230):
        nested = [nested]
    body = orjson.dumps({"event": "whatsapp:message:in", "payload": {"message": {
        "id": f"wamid.{uuid.uuid4().hex}", "type": "text", "text": {"body": "hi"},
        "extra": nested}}})
    (outcome,) = live.followed_by_a_normal_text([body])
    unknown = outcome.only(live.topics.unknown)
    assert unknown.value == body
    assert header(unknown, names.REASON) == "JSON nested deeper than 64 levels"


def test_statuses_with_900_kb_message_ids_go_to_unknown(live: LiveWorker) -> None:
    bodies = [status_body(f"{n}{uuid.uuid4().hex}" + "i" * 900_000, "delivered")
              for n in range(3)]
    outcomes = live.followed_by_a_normal_text(bodies)
    for outcome in outcomes:
        assert outcome.topics() == {live.topics.unknown}
        assert "event id longer than 1024 bytes" in (
            header(outcome.only(live.topics.unknown), names.REASON) or "")


def test_texts_with_nul_and_astral_characters_arrive_as_sent(live: LiveWorker) -> None:
    text = "nul \x00 here, emoji \U0001f600, escaped \\u0000 and \u2028"
    (outcome,) = live.followed_by_a_normal_text([text_body(f"wamid.{uuid.uuid4().hex}", text)])
    routed = Event.from_json(outcome.only(live.topics.event("message.text")).value)
    assert routed.content == TextContent(body=text)
