"""The few fields of an event that the state folds read, from an `Event` or straight from
the JSON the router wrote.

Dedup folds every status into the message-state table and every incoming message into the
contact-window table (`_state_table.py`). Building a whole `Event` from its routed JSON for
that took a third of the fold's time (24 µs a status, measured with the simulator's
traffic); the folds read a dozen fields, which this reads from the decoded JSON directly.
The PostgreSQL sink, which has the `Event`, builds the same facts with `of_event`, so both
apply the one set of rules (`outbound_state.py`, `contact_window.py`) to the same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from streams.events import Event, StatusContent, parse_time


class EventFactsError(ValueError):
    """Routed JSON that does not hold the fields of an event (the caller reads it again
    with `Event.from_json`, which says what is wrong)."""


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the folds read of one event; the status fields are None for a message."""

    event_id: str
    kind: str  # "message" or "status"
    account: str
    message_id: str
    contact: str | None  # the number, E.164; else the business-scoped user id
    received_at: datetime
    occurred_at: datetime | None
    status: str | None = None
    error_code: int | None = None
    error_title: str | None = None
    pricing_category: str | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None

    @classmethod
    def of_event(cls, event: Event) -> EventFacts:
        content = event.content
        contact = event.contact_number or event.contact_user_id
        if isinstance(content, StatusContent):
            return cls(
                event.event_id, event.kind, event.account, event.message_id, contact,
                event.received_at, event.occurred_at, content.status, content.error_code,
                content.error_title, content.pricing_category, content.sent_at,
                content.delivered_at, content.read_at,
            )
        return cls(event.event_id, event.kind, event.account, event.message_id, contact,
                   event.received_at, event.occurred_at)

    @classmethod
    def of_routed_json(cls, data: bytes) -> EventFacts:
        """The facts of an event as the router wrote it (`Event.to_json`); EventFactsError
        when the JSON is not such an event."""
        try:
            fields: dict[str, Any] = orjson.loads(data)
            received = parse_time(fields["received_at"])
            if received is None:
                raise EventFactsError("the event has no receipt time")
            common = (fields["event_id"], fields["kind"], fields["account"],
                      fields["message_id"],
                      fields["contact_number"] or fields.get("contact_user_id"), received,
                      parse_time(fields["occurred_at"]))
            if fields["kind"] != "status":
                return cls(*common)
            content = fields["content"]
            return cls(
                *common, content["status"], content.get("error_code"),
                content.get("error_title"), content.get("pricing_category"),
                parse_time(content.get("sent_at")), parse_time(content.get("delivered_at")),
                parse_time(content.get("read_at")),
            )
        except EventFactsError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EventFactsError(f"not a routed event: {exc!r}") from exc
