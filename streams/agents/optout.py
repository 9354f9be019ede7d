"""Opt-out detection: an incoming text that means "stop", or a customer's `stop` of
marketing messages (`contact.preferences`), emits a `contact.optout` event.

A `resume` publishes nothing here: every record of `contact.optout` means "opted out", as
readers of version 2 take it. It is on `contact.preferences`, and the PostgreSQL sink
deletes the opt-out it ends (`sinks/_pg_notices.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.agents import Emit, event_agent
from streams.events import Event, OptOutEvent, TextContent
from streams.headers import EVENT_ID, EVENT_TYPE
from streams.notices import CONTACT_PREFERENCES, NoticeEvent, PreferencesContent
from streams.stop_phrases import detect_optout

if TYPE_CHECKING:
    from qikflow.topics import Topics
    from streams.context import StreamsApp

NAME = "optout"
PREFERENCES_NAME = "optout-preferences"
MARKETING = "marketing_messages"


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
        contact_user_id=event.contact_user_id,
        contact_name=event.contact_name,
        account=event.account,
        message_id=event.message_id,
        text=event.content.body,
        matched=matched,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        receipt_ids=event.receipt_ids,
    )


def preference_optout(notice: NoticeEvent) -> OptOutEvent | None:
    """The opt-out a marketing `stop` is, or None for any other preference."""
    content = notice.content
    if not (isinstance(content, PreferencesContent) and content.category == MARKETING
            and content.value == "stop"):
        return None
    return OptOutEvent(
        event_id=f"optout:{notice.event_id}",
        contact_number=notice.contact_number,
        contact_name=None,
        account=notice.account,
        message_id=notice.event_id,
        text=content.detail or "",
        matched=MARKETING,
        occurred_at=notice.occurred_at,
        received_at=notice.received_at,
        receipt_ids=notice.receipt_ids,
    )


def emit_optout(event: Event | NoticeEvent, topics: Topics) -> list[Emit]:
    optout = (preference_optout(event) if isinstance(event, NoticeEvent)
              else optout_event(event))
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
    event_agent(
        streams,
        name=PREFERENCES_NAME,
        event_types=[CONTACT_PREFERENCES],
        handle=lambda notice: emit_optout(notice, topics),
        decode=NoticeEvent.from_json,
    )
