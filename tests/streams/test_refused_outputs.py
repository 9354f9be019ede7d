"""Outputs the broker refuses: the record they came from goes to the DLQ, nothing is lost.

The refusal is real: `<prefix>.unknown` and `<prefix>.message.text` are created with a
1 KiB `max.message.bytes`, so the broker rejects the big records the worker writes there
(MessageSizeTooLarge, not retriable). The router must dead-letter the raw record whose
unknown output was refused; dedup must dead-letter the event whose per-type record was;
and the worker must go on routing what the broker accepts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from qikflow.topics import Topics
from streams import headers as names
from tests.streams._worker import (
    TEST_PARTITIONS,
    WorkerCluster,
    event_id,
    header,
    read,
    send_raw,
    status_body,
    text_body,
)

SMALL_TOPIC_BYTES = 1024
BIG_UNKNOWN = orjson.dumps({"hello": "x" * 3000})
BIG_TEXT = text_body("wamid.BIG1", "y" * 3000)
SMALL_STATUS = status_body("OUTSMALL1", "delivered")


async def create_small_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(name, TEST_PARTITIONS, 1,
                     topic_configs={"max.message.bytes": str(SMALL_TOPIC_BYTES)})
            for name in topics
        ])
    finally:
        await admin.close()


def test_records_whose_outputs_the_broker_refuses_are_dead_lettered(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    small = [topics.unknown, topics.event("message.text")]
    asyncio.run(create_small_topics(kafka_bootstrap, small))
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path)
    try:
        worker = cluster.start()
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, [BIG_UNKNOWN, BIG_TEXT, SMALL_STATUS]))
        dlq = read(kafka_bootstrap, rf"^{topic_prefix}\.dlq$", 2)
        routed = read(kafka_bootstrap, rf"^{topic_prefix}\.status\..*", 1)
        assert worker.process.poll() is None, "the worker must go on"
    finally:
        cluster.stop_all()

    by_agent = {header(record, names.FAILED_AGENT): record for record in dlq}
    assert set(by_agent) == {"router", "dedup"}, [r.headers for r in dlq]
    # The router's dead letter is the raw body, byte for byte, with why and where.
    from_router = by_agent["router"]
    assert from_router.value == BIG_UNKNOWN
    # The error is the client's last one: MessageSizeTooLarge, or NotLeaderForPartition
    # when a busy broker had no leader for the new topic before the producer gave up.
    assert header(from_router, names.REASON) == "undeliverable"
    assert header(from_router, names.ERROR)
    assert header(from_router, names.SOURCE_TOPIC) == topics.raw
    # Dedup's dead letter is the event as it would have been published.
    from_dedup = by_agent["dedup"]
    assert event_id(from_dedup) == "wamid.BIG1"
    assert orjson.loads(from_dedup.value)["content"]["body"] == "y" * 3000
    assert header(from_dedup, names.REASON) == "undeliverable"
    # What the broker accepts is routed as usual.
    assert [event_id(record) for record in routed] == ["OUTSMALL1:delivered"]
