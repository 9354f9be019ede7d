"""streams/_seek.py: Faust's seek to committed offsets also rewinds partitions never committed.

Without it a record Faust fetched and dropped at a rebalance, on a partition the group had
not committed yet, was never read again (a fault drill lost one event of its first second).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from qikflow.config import KafkaSettings
from streams._seek import (
    RewindingConsumerThread,
    RewindingTransport,
    awaiting_position,
    seek_to_committed_or_start,
)
from streams.app import create_app
from streams.settings import StreamsSettings

RECORDS = 5


@pytest.fixture
async def read_to_end(topic_prefix: str) -> AsyncIterator[tuple[AIOKafkaConsumer, TopicPartition]]:
    """A consumer of a new group that has read all RECORDS of a one-partition topic and
    committed nothing: its position is past every record."""
    bootstrap = KafkaSettings().bootstrap
    topic = f"{topic_prefix}.seek"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(RECORDS):
            await producer.send_and_wait(topic, str(n).encode())
    finally:
        await producer.stop()
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"g{uuid.uuid4().hex}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign([tp])
    try:
        read = 0
        while read < RECORDS:
            read += len((await consumer.getmany(tp, timeout_ms=1000)).get(tp, []))
        assert await consumer.position(tp) == RECORDS
        yield consumer, tp
    finally:
        await consumer.stop()


async def test_a_partition_never_committed_is_read_again_from_its_start(
    read_to_end: tuple[AIOKafkaConsumer, TopicPartition],
) -> None:
    consumer, tp = read_to_end
    committed = await seek_to_committed_or_start(consumer, lambda topic: True)
    assert committed == {tp: None}
    assert await consumer.position(tp) == 0
    again = (await consumer.getmany(tp, timeout_ms=5000)).get(tp, [])
    assert [record.value for record in again][:1] == [b"0"]


async def test_aiokafka_alone_leaves_it_past_the_records(
    read_to_end: tuple[AIOKafkaConsumer, TopicPartition],
) -> None:
    """What Faust relied on: the position does not move, so dropped records are skipped."""
    consumer, tp = read_to_end
    await seek_to_committed_or_start(consumer, lambda topic: False)
    assert await consumer.position(tp) == RECORDS


async def test_a_committed_partition_goes_back_to_its_commit(
    read_to_end: tuple[AIOKafkaConsumer, TopicPartition],
) -> None:
    consumer, tp = read_to_end
    await consumer.commit({tp: OffsetAndMetadata(3, "")})
    assert await seek_to_committed_or_start(consumer, lambda topic: True) == {tp: 3}
    assert await consumer.position(tp) == 3


def _livelock_checker(consumer: AIOKafkaConsumer) -> RewindingConsumerThread:
    """The worker's consumer thread, not started: only what Faust's livelock check reads of
    it is set, over a real consumer."""
    checker = RewindingConsumerThread.__new__(RewindingConsumerThread)
    checker.__dict__.update(
        _ensure_consumer=lambda: consumer, time_started=time.monotonic(),
        tp_fetch_request_timeout_secs=300.0, tp_stream_timeout_secs=300.0,
        consumer=SimpleNamespace(app=SimpleNamespace(
            monitor=object(), topics=SimpleNamespace(acks_enabled_for=lambda topic: True))),
        log=logging.getLogger("test"))
    return checker


async def test_the_livelock_check_passes_over_a_partition_sought_to_its_start(
    read_to_end: tuple[AIOKafkaConsumer, TopicPartition],
) -> None:
    """Between the seek and the fetcher placing it, the partition has no position: Faust's
    own check asserted on it (a worker crashed in CI); ours leaves it out until it has."""
    consumer, tp = read_to_end
    faust_tp = TP(tp.topic, tp.partition)
    checker = _livelock_checker(consumer)
    assert not awaiting_position(consumer, faust_tp)
    seeking = asyncio.create_task(seek_to_committed_or_start(consumer, lambda topic: True))
    while not awaiting_position(consumer, faust_tp):  # the seek asks Kafka where the start is
        assert not seeking.done(), "the seek ended before the partition lost its position"
        await asyncio.sleep(0)
    with pytest.raises(AssertionError):  # what crashed the worker
        faust_aiokafka.AIOKafkaConsumerThread.verify_event_path(checker, time.monotonic(),
                                                                faust_tp)
    checker.verify_event_path(time.monotonic(), faust_tp)
    await seeking
    assert not awaiting_position(consumer, faust_tp)
    assert await consumer.position(tp) == 0


def test_the_worker_app_uses_the_rewinding_consumer(tmp_path: Path) -> None:
    app = create_app(KafkaSettings(), StreamsSettings(data_dir=tmp_path), cluster_id="c1").app
    assert isinstance(app.transport, RewindingTransport)
    assert isinstance(app.consumer._thread, RewindingConsumerThread)  # type: ignore[attr-defined]
