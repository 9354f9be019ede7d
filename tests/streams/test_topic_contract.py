"""The published contract: a plain aiokafka consumer with a pattern subscription reads the
per-type topics, and every event validates against its JSON Schema in `schemas/`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from tests.streams.conftest import RoutingRun

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return loaded


async def subscribe_and_read(bootstrap: str, pattern: str, expected: int) -> list[ConsumerRecord]:
    """What another service would do: its own group, a pattern, from the beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"contract-test-{time.monotonic_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    consumer.subscribe(pattern=pattern)
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + 90
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


def test_every_event_on_the_per_type_topics_matches_its_schema(
    routing_run: RoutingRun, kafka_bootstrap: str
) -> None:
    prefix = routing_run.topics.prefix
    pattern = rf"^{prefix}\.(message|status)\..*"
    records = asyncio.run(
        subscribe_and_read(kafka_bootstrap, pattern, len(routing_run.expected_events))
    )
    assert len(records) >= len(routing_run.expected_events)
    validated = set()
    for record in records:
        event_type = record.topic.removeprefix(f"{prefix}.")
        jsonschema.validate(json.loads(record.value), schema(event_type))
        validated.add(event_type)
    assert validated == set(routing_run.expected_events.values())


def test_optout_events_match_their_schema(routing_run: RoutingRun) -> None:
    assert routing_run.optout
    for record in routing_run.optout:
        jsonschema.validate(json.loads(record.value), schema("contact.optout"))
