"""Bodies with timed statuses and messages, and a reader of the state topics, for the tests
of the message-state and contact-window agents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def unix(at: datetime) -> str:
    return str(int(at.timestamp()))


def meta_status(message_id: str, status: str, at: datetime, contact: str = "919800000001",
                **extra: Any) -> bytes:
    """A Meta body with one status."""
    return _meta({"statuses": [{"id": message_id, "status": status, "timestamp": unix(at),
                                "recipient_id": contact, **extra}]})


def meta_text(message_id: str, at: datetime, contact: str = "919800000001",
              text: str = "hello") -> bytes:
    """A Meta body with one incoming text."""
    return _meta({"contacts": [{"profile": {"name": "Asha"}, "wa_id": contact}],
                  "messages": [{"from": contact, "id": message_id, "timestamp": unix(at),
                                "type": "text", "text": {"body": text}}]})


def _meta(value: dict[str, Any]) -> bytes:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "918041234567",
                          "phone_number_id": "106540352242922"}, **value}
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]})


async def read_until(bootstrap: str, topic: str, done: Callable[[dict[bytes, list[Any]]], bool],
                     timeout_s: float = 120.0) -> dict[bytes, list[dict[str, Any]]]:
    """Every record of `topic` from the start, by key in offset order, once `done` says the
    records so far are all there (or `timeout_s` passed)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                metadata_max_age_ms=1000)
    await consumer.start()
    by_key: dict[bytes, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            for records in batch.values():
                for record in records:
                    by_key.setdefault(record.key, []).append(orjson.loads(record.value))
            if by_key and done(by_key):
                await asyncio.sleep(0)
                break
    finally:
        await consumer.stop()
    return by_key


def latest_matches(expected: Mapping[bytes, Mapping[str, Any]], fields: tuple[str, ...]
                   ) -> Callable[[dict[bytes, list[Any]]], bool]:
    """`done` for `read_until`: the latest record of every expected key has these values."""
    def done(by_key: dict[bytes, list[Any]]) -> bool:
        return all(key in by_key and all(by_key[key][-1][name] == want[name] for name in fields)
                   for key, want in expected.items())
    return done
