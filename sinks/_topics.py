"""The topics a sink reads and the dead-letter topic it writes."""

from __future__ import annotations

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import TopicSpec, specs_for
from qikflow.topics import Topics
from streams.topics import event_topics

# Added to a dead-lettered record beside the streams' error headers: which sink failed.
FAILED_SINK = "qikflow-failed-sink"


def input_topics(kafka: KafkaSettings) -> list[str]:
    """Every per-type event topic and the opt-out topic, as an explicit list."""
    topics = Topics.from_settings(kafka)
    return [*event_topics(topics), topics.optout]


def sink_topics(kafka: KafkaSettings) -> list[TopicSpec]:
    """What a sink reads and writes, to create when missing, so a sink may start first."""
    return specs_for(kafka, [*input_topics(kafka), Topics.from_settings(kafka).sink_dlq])


def is_optout(topic: str) -> bool:
    return topic.endswith(".contact.optout")
