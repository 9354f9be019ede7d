"""Replay of a sink on the real broker: its group moves back to a moment, only while it is
stopped, only backwards, and a dry run moves nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from qikflow.config import KafkaSettings
from qikflow.operations.errors import BadInputError, SinkRunningError
from qikflow.operations.replay import replay
from qikflow.topics import Topics
from sinks._topics import input_topics
from tests.operations._letters import create, pipeline, produce

RECORDS = 10


async def _setup() -> tuple[KafkaSettings, str, int]:
    """Every input topic of the sinks; 10 records a second apart in each partition of
    message.text; the postgres sink's group committed: partition 0 at the end, partition
    1 at 2, partition 2 never."""
    kafka = KafkaSettings()
    await create(kafka, *input_topics(kafka))
    topic = Topics.from_settings(kafka).event("message.text")
    base_ms = int(time.time() * 1000) - 3_600_000
    for partition in range(3):
        await produce(kafka, topic, [(b"k", b"{}", [])] * RECORDS, partition=partition,
                      timestamps_ms=[base_ms + i * 1000 for i in range(RECORDS)])
    await _commit(kafka, {TopicPartition(topic, 0): RECORDS, TopicPartition(topic, 1): 2})
    return kafka, topic, base_ms


async def _commit(kafka: KafkaSettings, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap,
                                group_id=Topics.from_settings(kafka).sink_group("postgres"),
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in
                               offsets.items()})
    finally:
        await consumer.stop()


async def _committed(kafka: KafkaSettings, topic: str) -> list[int | None]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(
            Topics.from_settings(kafka).sink_group("postgres"))
    finally:
        await admin.close()
    return [found[TopicPartition(topic, p)].offset if TopicPartition(topic, p) in found
            else None for p in range(3)]


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def test_replay_moves_a_stopped_sink_back_and_never_forward(topic_prefix: str,
                                                                  tmp_path: Path) -> None:
    kafka, topic, base_ms = await _setup()
    dry = await replay(pipeline(tmp_path), "postgres", _at(base_ms + 5000), dry_run=True)
    assert dry.records == 5
    assert [(m.partition, m.committed, m.target) for m in dry.moves
            if m.topic == topic] == [(0, RECORDS, 5), (1, 2, 5), (2, None, 5)]
    assert "would move group" in dry.lines()[0] and f"{topic}[0]: 10 -> 5" in dry.lines()[1]
    assert await _committed(kafka, topic) == [RECORDS, 2, None]

    done = await replay(pipeline(tmp_path), "postgres", _at(base_ms + 5000))
    assert done.records == 5
    # Partition 1 had not reached the moment yet, partition 2 never committed: both stay.
    assert await _committed(kafka, topic) == [5, 2, None]
    again = await replay(pipeline(tmp_path), "postgres", _at(base_ms + 5000))
    assert again.records == 0


async def test_replay_refuses_while_the_sink_runs(topic_prefix: str, tmp_path: Path) -> None:
    kafka, topic, base_ms = await _setup()
    running = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap,
                               group_id=Topics.from_settings(kafka).sink_group("postgres"),
                               enable_auto_commit=False)
    await running.start()
    try:
        while not running.assignment():
            await asyncio.wait_for(running.getmany(timeout_ms=200), 30)
        with pytest.raises(SinkRunningError, match="the postgres sink is running: group "
                                                   rf"{topic_prefix}-sink-postgres has 1 member"):
            await replay(pipeline(tmp_path), "postgres", _at(base_ms))
    finally:
        await running.stop()
    assert await _committed(kafka, topic) == [RECORDS, 2, None]


async def test_an_unknown_sink_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown sink 'mysql'"):
        await replay(pipeline(tmp_path), "mysql", _at(0))
