"""The topics a sink reads and the dead-letter topic it writes, with their headers."""

from __future__ import annotations

from qikflow.config import KafkaSettings
from qikflow.streams.events import event_types

OPTOUT_SUFFIX = "contact.optout"
DLQ_SUFFIX = "sink.dlq"

# Headers added to a dead-lettered record; the record's own headers travel unchanged.
ERROR = "qikflow-error"
REASON = "qikflow-reason"
FAILED_SINK = "qikflow-failed-sink"
SOURCE_TOPIC = "qikflow-source-topic"
SOURCE_PARTITION = "qikflow-source-partition"
SOURCE_OFFSET = "qikflow-source-offset"


def input_topics(kafka: KafkaSettings) -> list[str]:
    """Every per-type event topic and the opt-out topic, as an explicit list."""
    return [kafka.topic(event_type) for event_type in event_types()] + [
        kafka.topic(OPTOUT_SUFFIX)
    ]


def dlq_topic(kafka: KafkaSettings) -> str:
    return kafka.topic(DLQ_SUFFIX)


def is_optout(topic: str) -> bool:
    return topic.endswith("." + OPTOUT_SUFFIX)
