"""`qikflow window PHONE`: is the 24-hour customer-service window of a contact open, and
until when, from the `contact_windows` table the PostgreSQL sink keeps
(`streams/contact_window.py` defines the window)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qikflow.operations.database import Database
from qikflow.operations.errors import BadInputError
from streams.contact_window import ContactWindow
from streams.parsers.json_fields import e164

# A business-scoped user id: a country code, then dot-separated parts (`IN.ENT.7719...`).
USER_ID = re.compile(r"[A-Z]{2}(\.[A-Za-z0-9]+)+")

QUERY = """
SELECT account, contact, opened_at, last_incoming_at, last_message_id
FROM contact_windows WHERE contact = $1 AND ($2::text IS NULL OR account = $2)
ORDER BY account
"""


@dataclass(frozen=True, slots=True)
class WindowAnswer:
    """The window of one contact of one account, as of `now`."""

    window: ContactWindow
    now: datetime

    @property
    def is_open(self) -> bool:
        return self.window.is_open(self.now)

    def to_dict(self) -> dict[str, Any]:
        window = self.window
        return {
            "account": window.account, "contact": window.contact, "open": self.is_open,
            "opened_at": _iso(window.opened_at), "closes_at": _iso(window.closes_at),
            "last_incoming_at": _iso(window.last_incoming_at),
            "last_message_id": window.last_message_id,
            "seconds_left": max(0, int((window.closes_at - self.now).total_seconds())),
        }

    def line(self) -> str:
        window = self.window
        who = f"{window.contact} (account {window.account or '-'})"
        if self.is_open:
            return (f"{who}: window OPEN until {_iso(window.closes_at)} "
                    f"({_left(window.closes_at - self.now)} left), opened "
                    f"{_iso(window.opened_at)}; last incoming message {window.last_message_id}")
        return (f"{who}: window CLOSED since {_iso(window.closes_at)}; last incoming message "
                f"{window.last_message_id} at {_iso(window.last_incoming_at)}. Only template "
                "messages may be sent until the contact writes again")


def contact_number(phone: str) -> str:
    """The contact as the window table keys it: the E.164 form of a number the operator
    typed (`+91 98000 00001`, `919800000001`), or a business-scoped user id as sent
    (`IN.5522004411223344`: a customer who shares no number)."""
    number = e164(phone)
    if number is not None:
        return number
    if USER_ID.fullmatch(phone.strip()):
        return phone.strip()
    raise BadInputError(f"not a phone number: {phone!r} (give 6 to 15 digits, e.g. "
                        "+919800000001, or a business-scoped user id, e.g. "
                        "IN.5522004411223344)")


async def windows(db: Database, phone: str, account: str | None = None,
                  now: datetime | None = None) -> list[WindowAnswer]:
    """The windows of `phone` (of every account, or of `account`); empty when the contact
    never wrote (or wrote before the window retention)."""
    number = contact_number(phone)
    rows = await db.fetch(QUERY, number, account)
    moment = now or datetime.now(UTC)
    return [WindowAnswer(ContactWindow(*row), moment) for row in rows]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _left(delta: Any) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"
