"""`<prefix>.contact.window`: the 24-hour customer-service window of every contact.

Every incoming message dedup routes (they are keyed by contact) opens or extends its
contact's window in a Faust table keyed by `<account>:<contact>`, with the rule
of `streams/contact_window.py`, the same the PostgreSQL sink applies to `contact_windows`.
A message that opens, extends or moves the start of a window publishes the window; an
out-of-order one that changes nothing publishes nothing, and none ever shortens it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams._state_table import StateFold, StateTopic, merging, register_state
from streams.contact_window import ContactWindow, window_key
from streams.events import MESSAGE_TYPES

if TYPE_CHECKING:
    from streams.context import StreamsApp
    from streams.event_facts import EventFacts

NAME = "contact-window"
EVENT_TYPES = [f"message.{name}" for name in MESSAGE_TYPES]


def key(event: EventFacts) -> bytes | None:
    if event.kind != "message" or not event.contact:
        return None
    return window_key(event.account, event.contact)


# The window after a message, or None when it changes nothing.
fold = merging(ContactWindow.of_facts, ContactWindow.extend)

FOLD: StateFold[ContactWindow] = StateFold(
    key=key,
    fold=fold,
    encode=ContactWindow.to_json,
    decode=ContactWindow.from_json,
    record_type="contact.window",
)


def register(streams: StreamsApp) -> None:
    register_state(streams, name=NAME, event_types=EVENT_TYPES, fold=FOLD,
                   topic=StateTopic(streams.topics.contact_window,
                                    streams.settings.window_retention_s))
