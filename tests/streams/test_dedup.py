"""Dedup (stage 2): copies of an event id are dropped, the event routed is never lost, and a
worker skips only the keyed records it has itself handled."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from qikflow.topics import Topics
from streams import headers as names
from streams.dedup import HandledOffsets, parse_seen, seen_value
from tests.streams._worker import (
    WorkerCluster,
    event_id,
    header,
    routed_ids,
    routed_total,
    send_raw,
    traffic,
)
from tests.streams.conftest import DUPLICATE_STATUS, DUPLICATE_TEXT, RefusedRun, RoutingRun


def test_offsets_handled_in_this_process_are_recognised_when_read_again() -> None:
    handled = HandledOffsets()
    for offset in range(100, 201):
        assert not handled.already(0, offset)
        handled.add(0, offset)
    # Faust seeks back to the committed offset 150 and delivers 150..200 again.
    assert all(handled.already(0, offset) for offset in range(150, 201))
    assert not handled.already(0, 201)
    assert not handled.already(1, 150)  # another partition


def test_a_seek_below_the_first_offset_handled_skips_nothing_it_did_not_handle() -> None:
    handled = HandledOffsets()
    for offset in (100, 101, 102):
        handled.add(0, offset)
    # A replay from 40 (records another worker routed before a crash) is handled in full:
    # adding 40..99 must not make the range cover what is still to be read.
    for offset in range(40, 100):
        assert not handled.already(0, offset)
        handled.add(0, offset)
    assert handled.already(0, 100)


def test_partitions_that_move_to_another_worker_are_forgotten() -> None:
    handled = HandledOffsets()
    handled.add(0, 10)
    handled.add(1, 10)
    handled.keep({1})
    assert not handled.already(0, 10)  # another worker may have handled 11.. meanwhile
    assert handled.already(1, 10)


@pytest.mark.parametrize(
    ("value", "position", "first_seen_ms"),
    [
        (seen_value(41, 3, 1_763_643_200_123), (41, 3), 1_763_643_200_123),
        (b"41:3:1763643200123", (41, 3), 1_763_643_200_123),
        # Written before bundles: `<offset>:<first seen ms>`, the event at index 0.
        (b"41:1763643200123", (41, 0), 1_763_643_200_123),
    ],
)
def test_table_values_of_both_formats_give_position_and_first_sighting(
    value: bytes, position: tuple[int, int], first_seen_ms: int
) -> None:
    assert parse_seen(value) == (position, first_seen_ms)


def test_copies_of_one_event_are_routed_once_and_counted(routing_run: RoutingRun) -> None:
    counts = Counter(event_id(r) for r in routing_run.events)
    assert counts["wamid.DUP1"] == 1
    assert counts["OUTDUP1:delivered"] == 1
    # Each was sent twice with different receipt ids; the second copy of each is dropped.
    assert routing_run.bodies.count(DUPLICATE_TEXT) == 2
    assert routing_run.bodies.count(DUPLICATE_STATUS) == 2
    assert routing_run.metrics["qikflow_streams_deduplicated_events_total"] >= 2
    assert [eid for eid, n in counts.items() if n > 1] == []


def test_an_event_whose_output_the_broker_refuses_is_dead_lettered(
    refused_run: RefusedRun,
) -> None:
    record = refused_run.dead_letter(names.DEDUP)
    # The event as it would have been published, not the bundle it travelled in.
    assert event_id(record) == "wamid.BIG1"
    assert orjson.loads(record.value)["content"]["body"] == "y" * 3000
    assert header(record, names.REASON) == "undeliverable"
    assert header(record, names.SOURCE_TOPIC) == refused_run.topics.keyed
    assert refused_run.went_on


def test_a_worker_killed_mid_stream_resumes_without_loss(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path)
    bodies, expected = traffic(8000, "kill")
    first = cluster.start(0)
    try:
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, bodies))
        while routed_total(first.metrics()) < 1000:
            assert first.process.poll() is None, first.log.read_text()[-2000:]
            time.sleep(0.05)
        first.kill()  # SIGKILL: no flush, no commit, no goodbye to the group
        second = cluster.start(0)  # same index: same RocksDB state on this machine
        seen = routed_ids(kafka_bootstrap, topic_prefix, len(expected))
        resumed = routed_total(second.metrics())
    finally:
        cluster.stop_all()
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    assert set(seen) == expected
    # The restart re-read what the killed worker had not committed, and routed the rest.
    assert resumed > 0
    # At-least-once: records routed but not yet committed at the kill may appear twice
    # (the same event, same event id); consumers dedupe on event_id. Nothing else repeats.
    copies = sum(n - 1 for n in seen.values())
    assert copies < len(expected)


def test_an_event_dead_lettered_is_not_remembered_so_a_resend_is_not_dropped(
    refused_run: RefusedRun,
) -> None:
    # The resend met the same refusal: dead-lettered again, not dropped as a copy.
    from_dedup = [r for r in refused_run.resent_dlq if header(r, names.FAILED_AGENT) == "dedup"]
    assert [event_id(r) for r in from_dedup] == ["wamid.BIG1", "wamid.BIG1"]
    # Once the topic takes it, the next resend (or a re-drive of the dead letter) is routed.
    assert [event_id(r) for r in refused_run.redriven] == ["wamid.BIG1"]
