"""Tests of ingest/raw_topic.py on the real broker, at the defaults a user gets (1 MiB)."""

from __future__ import annotations

import logging

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ingest._producer import drop, new_producer
from ingest.errors import RawTopicTooSmallError
from ingest.raw_topic import TOPIC_LIMIT, RawTopicSize, batch_bytes, ensure_raw_topic
from ingest.record import FIELD_CAPS_BYTES, largest_headers
from ingest.settings import IngestSettings
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import topic_configs
from qikflow.topics import Topics
from tests.fixtures.kafka import consume

MIB = 1024 * 1024
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1048588  # Kafka's own message.max.bytes default


def test_the_default_size_needs_more_than_kafkas_default() -> None:
    size = RawTopicSize.for_settings(IngestSettings())
    assert size.max_body_bytes == MIB
    assert size.record_batch_bytes == batch_bytes(MIB)
    headers_bytes = sum(FIELD_CAPS_BYTES.values())
    assert MIB + headers_bytes < size.record_batch_bytes < MIB + headers_bytes + 300
    assert size.max_message_bytes > KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    assert size.max_request_bytes == size.record_batch_bytes


def test_a_too_small_topic_names_both_settings_to_change() -> None:
    size = RawTopicSize.for_settings(IngestSettings())
    size.check("qikchat.raw", {TOPIC_LIMIT: str(size.max_message_bytes)}, "k:9092")
    with pytest.raises(RawTopicTooSmallError) as refused:
        size.check("qikchat.raw", {TOPIC_LIMIT: str(KAFKA_DEFAULT_MAX_MESSAGE_BYTES)},
                   "k:9092")
    message = str(refused.value)
    assert f"{TOPIC_LIMIT}={size.max_message_bytes}" in message
    assert "--entity-name qikchat.raw" in message
    largest = size.largest_body_within(KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
    assert f"QIKFLOW_MAX_BODY_BYTES to at most {largest}" in message
    assert batch_bytes(largest) <= KAFKA_DEFAULT_MAX_MESSAGE_BYTES < batch_bytes(largest + 1)
    with pytest.raises(RawTopicTooSmallError, match="did not report"):
        size.check("qikchat.raw", {}, "k:9092")


async def test_a_topic_qikflow_creates_stores_a_body_at_the_limit(topic_prefix: str) -> None:
    kafka, settings = KafkaSettings(), IngestSettings()
    topic = Topics.from_settings(kafka).raw
    size = RawTopicSize.for_settings(settings)
    await ensure_raw_topic(kafka, topic, size)
    assert int((await topic_configs(kafka, topic))[TOPIC_LIMIT]) == size.max_message_bytes
    # The largest record the ingest can make: a body at the limit, every header at its cap.
    headers = largest_headers()
    producer = new_producer(kafka.client_options(), linger_ms=0,
                            max_batch_bytes=settings.producer_max_batch_bytes,
                            max_request_bytes=size.max_request_bytes)
    await producer.start()
    try:
        body = b"b" * settings.max_body_bytes
        await (await producer.send(topic, body, headers=headers))
    finally:
        await drop(producer)
    records = await consume(kafka.bootstrap, [topic], expected=1)
    assert [(r.value, list(r.headers)) for r in records] == [(body, headers)]


async def make_topic(kafka: KafkaSettings, topic: str, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    finally:
        await admin.close()


async def test_a_topic_made_with_kafkas_defaults_gets_the_limit_set_on_it(
    topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Auto-created, or created by another process first: it sets no limit of its own, so
    the ingest sets one, keeping the topic's other settings."""
    kafka = KafkaSettings()
    topic = Topics.from_settings(kafka).raw
    await make_topic(kafka, topic, {"retention.ms": "3600000"})
    assert int((await topic_configs(kafka, topic))[TOPIC_LIMIT]) == (
        KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
    size = RawTopicSize.for_settings(IngestSettings())
    with caplog.at_level(logging.WARNING, logger="ingest.raw_topic"):
        await ensure_raw_topic(kafka, topic, size)
    configs = await topic_configs(kafka, topic)
    assert int(configs[TOPIC_LIMIT]) == size.max_message_bytes
    assert configs["retention.ms"] == "3600000"
    assert f"set no {TOPIC_LIMIT} of its own" in caplog.text
    caplog.clear()
    await ensure_raw_topic(kafka, topic, size)  # now it is its own setting, and enough
    assert not caplog.text


async def test_a_topic_whose_own_limit_is_too_small_is_refused_and_left_alone(
    topic_prefix: str
) -> None:
    kafka = KafkaSettings()
    topic = Topics.from_settings(kafka).raw
    await make_topic(kafka, topic, {TOPIC_LIMIT: str(KAFKA_DEFAULT_MAX_MESSAGE_BYTES)})
    with pytest.raises(RawTopicTooSmallError, match="QIKFLOW_MAX_BODY_BYTES"):
        await ensure_raw_topic(kafka, topic, RawTopicSize.for_settings(IngestSettings()))
    assert int((await topic_configs(kafka, topic))[TOPIC_LIMIT]) == (
        KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
    # A limit that fits the existing topic is fine with it.
    small = IngestSettings(max_body_bytes=512 * 1024, producer_max_batch_bytes=512 * 1024)
    await ensure_raw_topic(kafka, topic, RawTopicSize.for_settings(small))
