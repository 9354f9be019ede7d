"""The topics a sink reads and the dead-letter topic it writes, named by `streams/topics.py`."""

from __future__ import annotations

from qikflow.config import KafkaSettings
from streams.topics import (
    ERROR,
    REASON,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
    Topics,
)

__all__ = ["ERROR", "FAILED_SINK", "REASON", "SOURCE_OFFSET", "SOURCE_PARTITION",
           "SOURCE_TOPIC", "dlq_topic", "input_topics", "is_optout"]

DLQ_SUFFIX = "sink.dlq"
# Added to a dead-lettered record beside the streams' error headers: which sink failed.
FAILED_SINK = "qikflow-failed-sink"


def input_topics(kafka: KafkaSettings) -> list[str]:
    """Every per-type event topic and the opt-out topic, as an explicit list."""
    topics = Topics.from_settings(kafka)
    return [*topics.events(), topics.optout]


def dlq_topic(kafka: KafkaSettings) -> str:
    return Topics.from_settings(kafka).name(DLQ_SUFFIX)


def is_optout(topic: str) -> bool:
    return topic.endswith(".contact.optout")
