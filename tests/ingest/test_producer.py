"""Tests of ingest/_producer.py: which errors concern a record, and dropping a producer whose
connection hangs without waiting for what it can no longer deliver."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    RecordListTooLargeError,
    UnknownError,
)

from ingest._producer import drop, new_producer, refused_record, spent_producer
from ingest.raw_topic import RawTopicSize, ensure_raw_topic
from ingest.settings import IngestSettings
from qikflow.config import KafkaSettings
from qikflow.topics import Topics
from tests.ingest._proxy import CuttingProxy, ProxiedKafka


def test_errors_are_sorted_by_what_they_concern() -> None:
    for error in (MessageSizeTooLargeError(), RecordListTooLargeError(), UnknownError()):
        assert refused_record(error) and not spent_producer(error)
    for error in (OutOfOrderSequenceNumber(), ProducerClosed()):
        assert spent_producer(error) and not refused_record(error)
    for error in (KafkaConnectionError(), NotLeaderForPartitionError(), TimeoutError()):
        assert not refused_record(error) and not spent_producer(error)


async def delivering_producer(proxied: tuple[ProxiedKafka, CuttingProxy]
                              ) -> tuple[AIOKafkaProducer, str]:
    """The ingest's producer at its defaults, through the proxy, once it delivered a record
    to the raw topic; and that topic."""
    broker, _ = proxied
    kafka = KafkaSettings(bootstrap=broker.proxy_bootstrap)
    settings = IngestSettings()
    size = RawTopicSize.for_settings(settings)
    topic = Topics.from_settings(kafka).raw
    await ensure_raw_topic(kafka, topic, size)
    producer = new_producer(kafka.client_options(), linger_ms=0,
                            max_batch_bytes=settings.producer_max_batch_bytes,
                            max_request_bytes=size.max_request_bytes)
    await producer.start()
    await (await producer.send(topic, b"delivered"))
    return producer, topic


async def test_drop_fails_what_a_hung_producer_holds_and_returns(
    proxied: tuple[ProxiedKafka, CuttingProxy], topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, proxy = proxied
    producer, topic = await delivering_producer(proxied)
    assert proxy.cut_open_connections() >= 1
    # One batch in flight on the dead connection, more queued behind it.
    deliveries = [await producer.send(topic, f"held {i}".encode()) for i in range(50)]
    await drop(producer)
    assert all(d.done() for d in deliveries)
    assert {type(d.exception()) for d in deliveries} == {ProducerClosed}
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        del deliveries, producer
        gc.collect()
    assert "never retrieved" not in caplog.text


async def test_drop_fails_batches_queued_again_after_kafka_went_away(
    proxied: tuple[ProxiedKafka, CuttingProxy], topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, proxy = proxied
    producer, topic = await delivering_producer(proxied)
    accumulator = producer._message_accumulator

    def queued() -> list[object]:
        return [batch for batches in accumulator._batches.values() for batch in batches]

    dropped = False
    # The connection swallows what is sent on it: a request goes out and waits for an answer.
    assert proxy.cut_open_connections() >= 1
    try:
        deliveries = [await producer.send(topic, f"held {i}".encode()) for i in range(20)]
        await until(lambda: bool(producer._sender._in_flight), "a request in flight")
        # Kafka goes away: the request in flight fails and its batches are queued again
        # (`retry_count` counts the times the sender took a batch).
        proxy.reset(refuse_new=True)
        await until(lambda: any(batch.retry_count for batch in queued()),  # type: ignore[attr-defined]
                    "a batch queued again")
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            dropped = True
            await drop(producer)
        assert {type(d.exception()) for d in deliveries} == {ProducerClosed}
        assert "Exception in callback" not in caplog.text
    finally:
        proxy.reset(refuse_new=False)
        if not dropped:
            await drop(producer)


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"waited {timeout_s:.0f} s for {what}")
