"""Kafka plumbing of the sink driver: creating missing topics, dead-letter headers."""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from qikflow.config import KafkaSettings
from sinks import _topics
from sinks.settings import SinkSettings

logger = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
MAX_ERROR_HEADER_BYTES = 2000


async def ensure_topics(kafka: KafkaSettings, settings: SinkSettings, topics: list[str]) -> None:
    """Create the topics that do not exist yet, so a sink may start before the router.

    A cluster that forbids it (no CREATE right) only gets a warning: the router creates
    them, and the consumer picks them up at its next metadata refresh.
    """
    admin = AIOKafkaAdminClient(**kafka.client_options())
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic not in existing]
        if not missing:
            return
        response = await admin.create_topics([
            NewTopic(topic, settings.sink_topic_partitions,
                     settings.sink_topic_replication_factor)
            for topic in missing
        ])
        for topic, code, *message in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                logger.warning("could not create topic %s (error %d %s); waiting for "
                               "another service to create it", topic, code, message)
        logger.info("created %d missing topics (%s, ...)", len(missing), missing[0])
    except KafkaError as error:
        logger.warning("could not check or create the sink topics (%s); consuming anyway", error)
    finally:
        await admin.close()


def dead_letter_headers(
    message: ConsumerRecord, *, sink: str, reason: str, error: str
) -> list[tuple[str, bytes]]:
    """The record's own headers, then why and where it failed."""
    headers = [(key, value) for key, value in (message.headers or ())]
    headers += [
        (_topics.ERROR, error.encode()[:MAX_ERROR_HEADER_BYTES]),
        (_topics.REASON, reason.encode()),
        (_topics.FAILED_SINK, sink.encode()),
        (_topics.SOURCE_TOPIC, message.topic.encode()),
        (_topics.SOURCE_PARTITION, str(message.partition).encode()),
        (_topics.SOURCE_OFFSET, str(message.offset).encode()),
    ]
    return headers
