"""The topics the worker reads and writes (their names come from `qikflow.topics`)."""

from __future__ import annotations

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import TopicSpec, specs_for
from qikflow.topics import Topics
from streams.events import event_types


def event_topics(topics: Topics) -> list[str]:
    """Every per-type topic (`<prefix>.message.*` and `<prefix>.status.*`)."""
    return topics.events(event_types())


def output_topics(topics: Topics) -> list[str]:
    """Every published topic the worker writes."""
    return [*event_topics(topics), topics.unknown, topics.dlq, topics.optout]


def worker_topics(kafka: KafkaSettings, topics: Topics | None = None) -> list[TopicSpec]:
    """Every topic the worker reads or writes (for `kafka`'s prefix, or `topics`), to create
    when missing."""
    topics = topics or Topics.from_settings(kafka)
    return specs_for(kafka, [topics.raw, topics.keyed, *output_topics(topics)])
