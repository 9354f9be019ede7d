"""Create the worker's topics at startup when they are missing (Kafka's admin API)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from qikflow.config import KafkaSettings
from streams.settings import StreamsSettings
from streams.topics import Topics

logger = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic the worker needs."""


async def ensure_topics(kafka: KafkaSettings, settings: StreamsSettings, topics: Topics) -> None:
    """Create every topic the worker reads or writes; topics that exist are left as they are."""
    names = [topics.raw, topics.keyed, *topics.outputs()]
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [NewTopic(name, settings.partitions, settings.replication_factor) for name in missing]
        )
    finally:
        await admin.close()
    created = []
    for name, code, *rest in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != TOPIC_ALREADY_EXISTS:  # another worker created it first
            message = rest[0] if rest else ""
            raise TopicCreationError(f"cannot create {name}: {for_code(code).__name__} {message}")
    if created:
        logger.info(
            "created %d topics with %d partitions, replication %d: %s",
            len(created), settings.partitions, settings.replication_factor, ", ".join(created),
        )
