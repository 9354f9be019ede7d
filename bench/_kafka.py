"""Removing what a benchmark left in Kafka."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from qikflow.config import KafkaSettings


async def delete_topics(kafka: KafkaSettings, prefixes: tuple[str, ...]) -> None:
    """Delete every topic named `<prefix>.*` or `<prefix>-*` for each of `prefixes`."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        names = [
            t for t in await admin.list_topics()
            if t.startswith(tuple(f"{p}{sep}" for p in prefixes for sep in ".-"))
        ]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
