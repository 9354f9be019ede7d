"""The 24-hour customer-service window of a contact, and the one rule that extends it.

WhatsApp lets a business send free-form messages to a contact only within 24 hours of
that contact's last incoming message. A window opens with an incoming message when none is
open, and each later one extends it to 24 hours after itself. Messages arrive out of order,
so a window is extended by another (one message is a window of one instant):

- a later window (its last message after ours) moves the end; it starts a new window when
  it begins after ours had closed, and otherwise the two are one;
- an earlier one that reaches into ours (ends within 24 hours before it opens) moves its
  start back; one that does not is an old window and changes nothing.

The end never moves back. The contact-window agent applies this in the order it reads
messages and publishes each change on `<prefix>.contact.window`
(`streams/agents/contact_window.py`); the PostgreSQL sink renders the same rule as its
upsert of `contact_windows` (`sinks/postgres.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.event_facts import EventFacts
from streams.events import SCHEMA_VERSION, Event
from streams.outbound_state import believed

WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ContactWindow:
    """The current window of one contact of one account."""

    account: str
    contact: str
    opened_at: datetime
    last_incoming_at: datetime
    last_message_id: str

    @property
    def closes_at(self) -> datetime:
        return self.last_incoming_at + WINDOW

    @property
    def key(self) -> bytes:
        """`<account>:<contact>` (an account label has no `:`), the table and topic key."""
        return window_key(self.account, self.contact)

    def extend(self, other: ContactWindow) -> ContactWindow:
        """This window with `other` (of the same contact, read after it) applied."""
        if other.last_incoming_at > self.last_incoming_at:
            opened = (other.opened_at if other.opened_at >= self.closes_at
                      else min(self.opened_at, other.opened_at))
            return replace(self, opened_at=opened, last_incoming_at=other.last_incoming_at,
                           last_message_id=other.last_message_id)
        if other.closes_at >= self.opened_at and other.opened_at < self.opened_at:
            return replace(self, opened_at=other.opened_at)
        return self

    def is_open(self, at: datetime) -> bool:
        return self.opened_at <= at < self.closes_at

    @classmethod
    def of_event(cls, event: Event) -> ContactWindow | None:
        """The window one incoming message opens (see `of_facts`)."""
        return cls.of_facts(EventFacts.of_event(event))

    @classmethod
    def of_facts(cls, event: EventFacts) -> ContactWindow | None:
        """The window one incoming message opens; None for statuses and for messages
        without a contact (a number, else a business-scoped user id). Its time is the
        provider's, unless that is missing or later than the receipt (`believed`): then the
        receipt time."""
        if event.kind != "message" or not event.contact:
            return None
        received = event.received_at.astimezone(UTC)
        at = believed(event.occurred_at, received) or received
        return cls(event.account, event.contact, at, at, event.message_id)

    # -- the published form (`<prefix>.contact.window`) --------------------------------

    def to_record(self) -> dict[str, Any]:
        """The value published on `<prefix>.contact.window`, as JSON reads back."""
        record: dict[str, Any] = orjson.loads(self.to_json())
        return record

    def to_json(self) -> bytes:
        """The published value: times in UTC with `Z`, as orjson writes them natively."""
        return orjson.dumps({
            "schema_version": SCHEMA_VERSION, "type": "contact.window",
            "account": self.account, "contact": self.contact,
            "opened_at": self.opened_at, "closes_at": self.closes_at,
            "last_incoming_at": self.last_incoming_at,
            "last_message_id": self.last_message_id,
        }, option=orjson.OPT_UTC_Z)

    @classmethod
    def from_json(cls, data: bytes) -> ContactWindow:
        record = orjson.loads(data)
        return cls(record["account"], record["contact"],
                   datetime.fromisoformat(record["opened_at"]),
                   datetime.fromisoformat(record["last_incoming_at"]),
                   record["last_message_id"])


def window_key(account: str, contact: str) -> bytes:
    return f"{account}:{contact}".encode()


