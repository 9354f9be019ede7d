"""Opt-out detection: an incoming text that means "stop" emits a `contact.optout` event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.agents import Emit, event_agent
from streams.events import Event, OptOutEvent, TextContent
from streams.headers import EVENT_ID, EVENT_TYPE
from streams.stop_phrases import detect_optout

if TYPE_CHECKING:
    from qikflow.topics import Topics
    from streams.context import StreamsApp

NAME = "optout"


def optout_event(event: Event) -> OptOutEvent | None:
    """The opt-out an incoming text asks for, or None when it does not mean "stop"."""
    if not isinstance(event.content, TextContent):
        return None
    matched = detect_optout(event.content.body)
    if matched is None:
        return None
    return OptOutEvent(
        event_id=f"optout:{event.message_id}",
        contact_number=event.contact_number,
        contact_name=event.contact_name,
        account=event.account,
        message_id=event.message_id,
        text=event.content.body,
        matched=matched,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        receipt_ids=event.receipt_ids,
    )


def emit_optout(event: Event, topics: Topics) -> list[Emit]:
    optout = optout_event(event)
    if optout is None:
        return []
    headers = ((EVENT_ID, optout.event_id.encode()), (EVENT_TYPE, optout.type.encode()))
    return [Emit(topics.optout, optout.key, optout.to_json(), headers)]


def register(streams: StreamsApp) -> None:
    topics = streams.topics
    event_agent(
        streams,
        name=NAME,
        event_types=["message.text"],
        handle=lambda event: emit_optout(event, topics),
    )
