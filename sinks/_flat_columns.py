"""Flat columns of an event's content, shared by the PostgreSQL tables and the lake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import overload

from streams.events import (
    ButtonContent,
    Content,
    EditContent,
    InteractiveContent,
    MediaContent,
    OrderContent,
    ReactionContent,
    SystemContent,
    TextContent,
)


@dataclass(frozen=True, slots=True)
class MessageFields:
    text: str | None = None
    media_url: str | None = None
    mime_type: str | None = None
    caption: str | None = None


def message_fields(content: Content) -> MessageFields:
    """`text` is the body, a button or list title, a reaction emoji, an order's text, a
    system message's body, or an edit's new text or caption."""
    if isinstance(content, TextContent):
        return MessageFields(text=content.body)
    if isinstance(content, MediaContent):
        return MessageFields(media_url=content.url, mime_type=content.mime_type,
                             caption=content.caption)
    if isinstance(content, InteractiveContent):
        return MessageFields(text=content.title)
    if isinstance(content, ButtonContent):
        return MessageFields(text=content.text or content.payload)
    if isinstance(content, ReactionContent):
        return MessageFields(text=content.emoji)
    if isinstance(content, OrderContent):
        return MessageFields(text=content.text)
    if isinstance(content, SystemContent):
        return MessageFields(text=content.body)
    if isinstance(content, EditContent) and content.edited is not None:
        edited = content.edited
        return MessageFields(text=_text(edited.get("body")), caption=_text(edited.get("caption")))
    return MessageFields()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
LAST_INSTANT = datetime.max.replace(tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """The time in UTC (the contract says UTC; a naive time is read as UTC, not local time).

    asyncpg sends the first and the last instant Python can hold as PostgreSQL's -infinity
    and infinity; a provider that sends year 1 (or 9999) means neither, so those two
    instants move one microsecond inward. The exact value stays in `raw`."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value <= FIRST_INSTANT:
        return FIRST_INSTANT + ONE_MICROSECOND
    if value >= LAST_INSTANT:
        return LAST_INSTANT - ONE_MICROSECOND
    return value
