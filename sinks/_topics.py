"""The topics a sink reads and the dead-letter topic it writes."""

from __future__ import annotations

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import TopicSpec, specs_for
from qikflow.size_budget import TOPIC_LIMIT
from qikflow.topics import Topics
from streams.budget import WorkerBudget
from streams.notices import NOTICE_TYPES
from streams.settings import StreamsSettings
from streams.topics import event_topics

# Added to a dead-lettered record beside the streams' error headers: which sink failed.
FAILED_SINK = "qikflow-failed-sink"


def input_topics(kafka: KafkaSettings) -> list[str]:
    """Every per-type event topic, every notice topic and the opt-out topic, as an
    explicit list."""
    topics = Topics.from_settings(kafka)
    return [*event_topics(topics), topics.optout]


def sink_topics(kafka: KafkaSettings) -> list[TopicSpec]:
    """What a sink reads and writes, to create when missing, so a sink may start first.

    Each is sized exactly as the worker sizes it (`streams/budget.py`): a sink that creates
    a per-type topic before the worker does must not leave it too small for the worker's
    events (the worker would then refuse to start). `<prefix>.sink.dlq` holds the same dead
    letters as `<prefix>.dlq`: events with their failure headers."""
    topics = Topics.from_settings(kafka)
    needs = {need.topic: need.limit_bytes
             for need in WorkerBudget.from_settings(StreamsSettings()).needs(topics)}
    limits = {name: needs[name] for name in input_topics(kafka)}
    limits[topics.sink_dlq] = needs[topics.dlq]
    return [spec for name, limit in limits.items()
            for spec in specs_for(kafka, [name], {TOPIC_LIMIT: str(limit)})]


def is_optout(topic: str) -> bool:
    return topic.endswith(".contact.optout")


def is_notice(topic: str) -> bool:
    """Whether the topic holds notices (`streams/notices.py`), not events."""
    return any(topic.endswith("." + notice_type) for notice_type in NOTICE_TYPES)
