"""Tests of qikflow/kafka_admin.py: one routine, one policy for creating topics."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import (
    TopicCreationError,
    TopicSpec,
    describe_topic,
    ensure_topics,
    raise_default_limits,
    specs_for,
    topic_configs,
)
from qikflow.topics import Topics


async def _describe(kafka: KafkaSettings, name: str) -> tuple[int, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
    finally:
        await admin.close()
    return len(described["partitions"]), await topic_configs(kafka, name)


async def test_missing_topics_are_created_at_the_default_size_and_existing_ones_kept(
    topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QIKFLOW_TOPIC_PARTITIONS")  # the default a user gets
    kafka = KafkaSettings()
    assert (kafka.topic_partitions, kafka.topic_replication_factor) == (6, None)
    topics = Topics.from_settings(kafka)
    spec = specs_for(kafka, [topics.raw], {"retention.ms": "3600000"})
    assert await ensure_topics(kafka, spec) == [topics.raw]
    partitions, configs = await _describe(kafka, topics.raw)
    assert partitions == 6
    assert configs["retention.ms"] == "3600000"
    assert configs["min.insync.replicas"] == "1"  # one broker: one replica, nothing to wait for
    # Exists: fine, and left as it is (no second creation, no change of its settings).
    other = [TopicSpec(topics.raw, 2, 1, {"retention.ms": "1000"})]
    assert await ensure_topics(kafka, other) == []
    assert await _describe(kafka, topics.raw) == (partitions, configs)


async def test_a_topic_the_broker_refuses_is_a_clear_error_naming_it(topic_prefix: str) -> None:
    kafka = KafkaSettings()
    name = Topics.from_settings(kafka).dlq
    # One broker cannot hold three replicas: the broker's own answer must reach the user.
    with pytest.raises(TopicCreationError) as refused:
        await ensure_topics(kafka, [TopicSpec(name, 1, 3)])
    message = str(refused.value)
    assert name in message
    assert "InvalidReplicationFactor" in message
    assert kafka.bootstrap in message
    assert "QIKFLOW_TOPIC_REPLICATION_FACTOR" in message


async def test_topics_without_a_limit_of_their_own_are_raised_and_others_kept(
    topic_prefix: str,
) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    # As an older qikflow created them: the broker's default limit, and one set by hand.
    await ensure_topics(kafka, specs_for(kafka, [topics.dlq]))
    await ensure_topics(kafka, specs_for(kafka, [topics.unknown],
                                         {"max.message.bytes": "500000"}))
    assert await raise_default_limits(
        kafka, {topics.dlq: 3_000_000, topics.unknown: 3_000_000}) == [topics.dlq]
    assert (await topic_configs(kafka, topics.dlq))["max.message.bytes"] == "3000000"
    assert (await topic_configs(kafka, topics.unknown))["max.message.bytes"] == "500000"
    # A second run changes nothing.
    assert await raise_default_limits(kafka, {topics.dlq: 3_000_000}) == []


async def test_a_topic_another_client_is_creating_is_described_once_it_exists(
    topic_prefix: str,
) -> None:
    """Created by another process a moment before: the broker answers "unknown topic" until
    the new metadata reaches it, and describing it waits for that instead of failing."""
    kafka = KafkaSettings()
    name = f"{topic_prefix}.late"

    async def create_later() -> None:
        await asyncio.sleep(0.5)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, 1, 1, topic_configs={
                "retention.ms": "3600000"})])
        finally:
            await admin.close()

    configs, _ = await asyncio.gather(topic_configs(kafka, name), create_later())
    assert configs["retention.ms"] == "3600000"


async def test_a_topic_that_never_appears_is_a_clear_error_after_the_wait(
    topic_prefix: str,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KafkaSettings().bootstrap)
    await admin.start()
    try:
        with pytest.raises(TopicCreationError,
                           match=rf"^Kafka at \S+ will not describe {topic_prefix}.never: "
                                 "UnknownTopicOrPartitionError"):
            await describe_topic(admin, f"{topic_prefix}.never",
                                 bootstrap=KafkaSettings().bootstrap, wait_s=1.0)
    finally:
        await admin.close()
