"""Builders of normalised events for the sink tests, and a producer into their topics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from streams.events import (
    Event,
    MediaContent,
    OptOutEvent,
    StatusContent,
    TextContent,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ACCOUNT = "acme"


def text_message(
    message_id: str, contact: str = "+919800000001", *, body: str = "hello",
    at: datetime = T0, received_at: datetime | None = None,
) -> Event:
    return Event(
        event_id=message_id, type="message.text", kind="message", format="qikchat",
        receipt_ids=[f"r-{message_id}"], received_at=received_at or at + timedelta(seconds=1),
        occurred_at=at, source="qikchat", account=ACCOUNT, business_number="+911140000000",
        contact_number=contact, contact_name="Asha", message_id=message_id,
        content=TextContent(body=body), raw={"id": message_id, "type": "text",
                                             "text": {"body": body}},
    )


def image_message(message_id: str, contact: str = "+919800000001", *,
                  at: datetime = T0) -> Event:
    return Event(
        event_id=message_id, type="message.image", kind="message", format="qikchat",
        receipt_ids=[f"r-{message_id}"], received_at=at + timedelta(seconds=1), occurred_at=at,
        source="qikchat", account=ACCOUNT, business_number="+911140000000",
        contact_number=contact, contact_name="Asha", message_id=message_id,
        content=MediaContent(url=f"https://cdn.example/{message_id}.jpg",
                             mime_type="image/jpeg", caption="look"),
        raw={"id": message_id, "type": "image"},
    )


def status(
    message_id: str, state: str, *, at: datetime = T0, contact: str = "+919800000002",
    error_code: int | None = None, error_title: str | None = None,
    received_at: datetime | None = None, **times: datetime,
) -> Event:
    return Event(
        event_id=f"{message_id}:{state}", type=f"status.{state}", kind="status",
        format="qikchat", receipt_ids=[f"r-{message_id}-{state}"],
        received_at=received_at or at + timedelta(seconds=1), occurred_at=at, source="qikchat",
        account=ACCOUNT, business_number="+911140000000", contact_number=contact,
        contact_name=None, message_id=message_id,
        content=StatusContent(status=state, error_code=error_code, error_title=error_title,
                              **times),
        raw={"id": message_id, "status": state},
    )


def optout(message_id: str, contact: str, *, at: datetime = T0) -> OptOutEvent:
    return OptOutEvent(
        event_id=f"optout:{message_id}", contact_number=contact, contact_name="Asha",
        account=ACCOUNT, message_id=message_id, text="STOP", matched="stop",
        occurred_at=at, received_at=at + timedelta(seconds=1), receipt_ids=[f"r-{message_id}"],
    )


def as_json(event: Event | OptOutEvent) -> bytes:
    """The event's JSON; with the standard library when it holds what orjson refuses (an
    integer beyond 64 bits), as a hand-written producer might send it."""
    try:
        return event.to_json()
    except TypeError:
        return json.dumps(event.model_dump(mode="json")).encode()


def topic_of(prefix: str, event: Event | OptOutEvent) -> str:
    return f"{prefix}.{event.type}"


async def produce(
    bootstrap: str, prefix: str, events: Sequence[Event | OptOutEvent],
    *, extra: list[tuple[str, bytes]] | None = None,
) -> None:
    """Send events to their per-type topics (and raw `(topic, value)` pairs), then flush."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for event in events:
            await producer.send(topic_of(prefix, event), as_json(event), key=event.key)
        for topic, value in extra or []:
            await producer.send(topic, value, key=b"poison")
        await producer.flush()
    finally:
        await producer.stop()
