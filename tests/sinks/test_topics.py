"""Tests of sinks/_topics.py: a sink that starts first creates topics the worker accepts."""

from __future__ import annotations

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import ensure_topics
from qikflow.size_budget import TOPIC_LIMIT
from qikflow.topics import Topics
from sinks._topics import input_topics, sink_topics
from streams.budget import WorkerBudget
from streams.settings import StreamsSettings
from streams.topics import check_topics


async def test_topics_a_sink_creates_are_big_enough_for_the_worker(topic_prefix: str) -> None:
    kafka = KafkaSettings()
    specs = sink_topics(kafka)
    names = [spec.name for spec in specs]
    assert names == [*input_topics(kafka), Topics.from_settings(kafka).sink_dlq]
    assert all(int(spec.configs[TOPIC_LIMIT]) > 2 * 1024 * 1024 for spec in specs)
    await ensure_topics(kafka, specs)
    # The worker's own start-up check, at the default 1 MiB body limit, passes on them.
    budget = WorkerBudget.from_settings(StreamsSettings())
    needs = [need for need in budget.needs(Topics.from_settings(kafka)) if need.topic in names]
    await check_topics(kafka, needs)
