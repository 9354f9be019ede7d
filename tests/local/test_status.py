"""Tests of qikflow/local/_status.py: the lag `qikflow up` shows is the lag there is."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import ensure_topics, specs_for
from qikflow.local._status import take_snapshot
from qikflow.topics import Topics


async def test_a_group_that_never_committed_is_behind_by_everything(
    topic_prefix: str, tmp_path: Path
) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    await ensure_topics(kafka, specs_for(kafka, [topics.raw]))
    producer = AIOKafkaProducer(**kafka.client_options())
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(topics.raw, b"%d" % n, partition=0)
    finally:
        await producer.stop()
    groups = [topics.router_group, topics.sink_group("postgres")]

    before = await take_snapshot(kafka, groups, None, tmp_path)
    assert before.errors == []
    assert before.topics[topics.raw] == 5
    # The router has committed nothing: all five wait. The sink reads no raw record.
    assert before.lag == {topics.router_group: 5, topics.sink_group("postgres"): 0}

    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=topics.router_group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topics.raw, 0)])
        await consumer.commit({TopicPartition(topics.raw, 0): 3})
    finally:
        await consumer.stop()
    after = await take_snapshot(kafka, groups, None, tmp_path)
    assert after.lag[topics.router_group] == 2
