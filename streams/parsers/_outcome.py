"""The three outcomes of parsing one raw record; re-exported by `streams.parsers`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from streams.events import SCHEMA_VERSION, Content, Event, Group, Referral, ReplyContext
from streams.parsers._identity import NO_CONTACT, Contact
from streams.parsers.json_fields import JSONObject, received_at

if TYPE_CHECKING:
    from datetime import datetime

    from ingest.record import RawRecord
    from streams.notices import NoticeEvent


@dataclass(frozen=True, slots=True)
class Parsed:
    """One or more events (a Meta body can carry several) -> the per-type topics; and
    notices (`streams/notices.py`), each to the topic of its type. At least one of either."""

    events: list[Event]
    notices: list[NoticeEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """A JSON object that is no event we know -> `<prefix>.unknown`, with why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Not JSON, JSON but not an object, or a body a parser failed on -> `<prefix>.dlq`."""

    error: str


Outcome = Parsed | Unrecognised | Undecodable


@dataclass(frozen=True, slots=True)
class Origin:
    """What every event of one record shares: the ingest receipt and the body format."""

    format: Literal["qikchat", "meta"]
    receipt_ids: list[str]
    received_at: datetime
    source: str
    account: str

    @classmethod
    def of(cls, fmt: Literal["qikchat", "meta"], record: RawRecord) -> Origin:
        return cls(
            fmt, [record.receipt_id], received_at(record.received_at_ms), record.source,
            record.account,
        )

    def event(
        self,
        *,
        event_id: str,
        event_type: str,
        message_id: str,
        occurred_at: datetime | None,
        business_number: str | None,
        content: Content,
        raw: JSONObject,
        contact: Contact = NO_CONTACT,
        context: ReplyContext | None = None,
        referral: Referral | None = None,
        phone_number_id: str | None = None,
        business_account_id: str | None = None,
        group: Group | None = None,
    ) -> Event:
        """The event, with the receipt fields of this record."""
        return Event(
            schema_version=SCHEMA_VERSION,
            event_id=event_id,
            type=event_type,
            kind="status" if event_type.startswith("status.") else "message",
            format=self.format,
            receipt_ids=list(self.receipt_ids),
            received_at=self.received_at,
            occurred_at=occurred_at,
            source=self.source,
            account=self.account,
            business_number=business_number,
            message_id=message_id,
            content=content,
            raw=raw,
            context=context,
            referral=referral,
            phone_number_id=phone_number_id,
            business_account_id=business_account_id,
            group=group,
            **contact.fields(),
        )
