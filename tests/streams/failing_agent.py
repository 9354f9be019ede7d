"""A test-only agent that raises on texts containing "boom" (QIKFLOW_STREAMS_EXTRA_AGENTS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.agents import Emit, event_agent
from streams.events import Event, TextContent

if TYPE_CHECKING:
    from streams.context import StreamsApp

NAME = "failing"


class BoomError(RuntimeError):
    """What this agent raises."""


def explode_on_boom(event: Event) -> list[Emit]:
    if isinstance(event.content, TextContent) and "boom" in event.content.body:
        raise BoomError(f"boom in {event.message_id}")
    return []


def register(streams: StreamsApp) -> None:
    event_agent(streams, name=NAME, event_types=["message.text"], handle=explode_on_boom)
