"""The state of an outbound message, and the one set of rules that merges two states.

Every status callback of a message says something about it (sent, delivered, read or
failed, and when); its state is what all of them say together. Callbacks arrive late,
twice, and out of order, so the rules are associative and, but for FIRST_KNOWN,
commutative: the state after a sequence of callbacks does not depend on where a consumer
splits it into batches. Two consumers apply them:

- the PostgreSQL sink merges the callbacks of one batch with `OutboundState.merge` and
  renders the same `MERGE_RULES` as its upsert (`sinks/postgres.py`);
- dedup folds every callback into the message-state table and publishes each
  change on `<prefix>.message.state` (`streams/agents/message_state.py`).

Both build a callback's state with `OutboundState.of_facts`, so the two can never disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.event_facts import EventFacts
from streams.events import SCHEMA_VERSION, STATUS_RANK, Event, StatusContent, parse_time

# A provider time later than the receipt by more than this is not believed: the state takes
# the receipt time instead (the event keeps what was sent). Clocks drift; a callback does
# not arrive before it happens.
CLOCK_SKEW = timedelta(minutes=5)
# Text taken from a callback into the state is cut to this many characters: a state merges
# the fields of several callbacks, and must stay a small record (titles are short).
TEXT_CHARS = 512
# One bit per status in `statuses`: which distinct callbacks the state holds.
STATUS_BITS = {"sent": 1, "delivered": 2, "read": 4, "failed": 8}
RANK_NAMES = {3: "read", 2: "delivered", 1: "sent"}


class Rule(enum.Enum):
    """How a field of two states of one message becomes the field of the merged state."""

    HIGHEST = "highest"  # the larger value; an unknown (None) one never wins
    EARLIEST = "earliest"  # the smaller value; an unknown (None) one never wins
    ANY = "any"  # true once either is true
    FIRST_KNOWN = "first_known"  # the first value that is neither None nor ""
    UNION = "union"  # the bits set in either (bit flags)


@dataclass(frozen=True, slots=True)
class OutboundState:
    """What is known of one outbound message; the row of `outbound_messages`."""

    message_id: str
    account: str
    contact: str | None
    status_rank: int
    failed: bool
    error_code: int | None
    error_title: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    updated_at: datetime
    pricing_category: str | None = None
    statuses: int = 0  # STATUS_BITS of the distinct callbacks applied
    played_at: datetime | None = None  # the earliest `played` (a voice message was played)

    def merge(self, later: OutboundState) -> OutboundState:
        """This state with `later` (a callback that arrived after it) applied."""
        return OutboundState(self.message_id, *[
            merged(getattr(self, name), getattr(later, name)) for name, merged in _MERGERS
        ])

    @classmethod
    def of_event(cls, event: Event) -> OutboundState | None:
        """The state one status callback says (see `of_facts`)."""
        if not isinstance(event.content, StatusContent):
            raise TypeError(f"event {event.event_id} of type {event.type} is not a status")
        return cls.of_facts(EventFacts.of_event(event))

    @classmethod
    def of_facts(cls, event: EventFacts) -> OutboundState | None:
        """The state one status callback says; None for `unknown` and `deleted` statuses
        (they are kept on their topics and in `message_status_events`, and move no state:
        `deleted` concerns a message the customer deleted, not one the business sent).
        `played` ranks with `read`, which it implies, and sets `played_at`; it adds no
        callback to `statuses`, whose published names stay those of version 2."""
        status = event.status
        if status is None:
            raise TypeError(f"event {event.event_id} is not a status")
        played = status == "played"
        if status not in STATUS_BITS and not played:
            return None
        received = _utc(event.received_at)
        at = believed(event.occurred_at, received)
        failed = status == "failed"
        return cls(
            message_id=event.message_id, account=event.account, contact=event.contact,
            status_rank=STATUS_RANK.get(status, 0), failed=failed,
            error_code=event.error_code if failed else None,
            error_title=_cut(event.error_title) if failed else None,
            sent_at=_earliest(believed(event.sent_at, received),
                              at if status == "sent" else None),
            delivered_at=_earliest(believed(event.delivered_at, received),
                                   at if status == "delivered" else None),
            read_at=_earliest(believed(event.read_at, received),
                              at if status == "read" else None),
            failed_at=at if failed else None,
            updated_at=at or received,
            pricing_category=_cut(event.pricing_category),
            statuses=STATUS_BITS.get(status, 0),
            played_at=at if played else None,
        )

    # -- the published form (`<prefix>.message.state`) ---------------------------------

    @property
    def status(self) -> str:
        """The highest status reached, or `failed` when none but `failed` arrived."""
        return RANK_NAMES.get(self.status_rank, "failed")

    @property
    def callbacks(self) -> int:
        """How many distinct status callbacks (sent, delivered, read, failed) were seen."""
        return bin(self.statuses).count("1")

    def to_record(self) -> dict[str, Any]:
        """The value published on `<prefix>.message.state` (`MessageStateRecord`), as JSON
        reads back."""
        record: dict[str, Any] = orjson.loads(self.to_json())
        return record

    def to_json(self) -> bytes:
        """The published value: times in UTC with `Z`, as orjson writes them natively."""
        return orjson.dumps({
            "schema_version": SCHEMA_VERSION, "type": "message.state",
            "message_id": self.message_id, "account": self.account, "contact": self.contact,
            "status": self.status, "status_rank": self.status_rank, "failed": self.failed,
            "error_code": self.error_code, "error_title": self.error_title,
            "pricing_category": self.pricing_category,
            "sent_at": self.sent_at, "delivered_at": self.delivered_at,
            "read_at": self.read_at, "failed_at": self.failed_at, "updated_at": self.updated_at,
            "statuses_seen": [name for name, bit in STATUS_BITS.items() if self.statuses & bit],
            "callbacks": self.callbacks, "played_at": self.played_at,
        }, option=orjson.OPT_UTC_Z)

    @classmethod
    def from_json(cls, data: bytes) -> OutboundState:
        """A state from its published form (the message-state table keeps that form)."""
        record = orjson.loads(data)
        values = {name: record[name] for name in _STORED if name in record}
        for name in _TIMES:
            values[name] = parse_time(values.get(name))
        values["statuses"] = sum(STATUS_BITS[name] for name in record["statuses_seen"])
        return cls(**values)


# Every field but the key. `updated_at` is the time of the latest callback applied.
MERGE_RULES: dict[str, Rule] = {
    "account": Rule.FIRST_KNOWN,
    "contact": Rule.FIRST_KNOWN,
    "status_rank": Rule.HIGHEST,
    "failed": Rule.ANY,
    "error_code": Rule.FIRST_KNOWN,
    "error_title": Rule.FIRST_KNOWN,
    "sent_at": Rule.EARLIEST,
    "delivered_at": Rule.EARLIEST,
    "read_at": Rule.EARLIEST,
    "failed_at": Rule.EARLIEST,
    "updated_at": Rule.HIGHEST,
    "pricing_category": Rule.FIRST_KNOWN,
    "statuses": Rule.UNION,
    "played_at": Rule.EARLIEST,
}
TEXT_FIELDS = frozenset(f.name for f in fields(OutboundState) if str(f.type).startswith("str"))
_STORED = tuple(f.name for f in fields(OutboundState))
_TIMES = ("sent_at", "delivered_at", "read_at", "failed_at", "updated_at", "played_at")


def believed(at: datetime | None, received: datetime) -> datetime | None:
    """A provider time as the state takes it: in UTC, or the receipt time when it is
    later than the receipt by more than CLOCK_SKEW."""
    if at is None:
        return None
    at = _utc(at)
    return received if at > received + CLOCK_SKEW else at


def _known(value: Any) -> bool:
    return value is not None and value != ""


def _first_known(first: Any, second: Any) -> Any:
    return first if _known(first) else second


def _any(first: Any, second: Any) -> bool:
    return bool(first or second)


def _union(first: Any, second: Any) -> int:
    return int(first or 0) | int(second or 0)


def _known_extreme(pick: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """`pick` (max or min) of two values, of which an unknown (None) one never wins."""
    def merged(first: Any, second: Any) -> Any:
        if first is None:
            return second
        if second is None:
            return first
        return pick(first, second)
    return merged


_highest = _known_extreme(max)
_earliest = _known_extreme(min)


_RULE_FUNCTIONS: dict[Rule, Callable[[Any, Any], Any]] = {
    Rule.FIRST_KNOWN: _first_known, Rule.ANY: _any, Rule.UNION: _union,
    Rule.HIGHEST: _highest, Rule.EARLIEST: _earliest,
}
# The merge of each field after the key, in the order of the dataclass's fields.
_MERGERS = tuple((name, _RULE_FUNCTIONS[MERGE_RULES[name]]) for name in _STORED[1:])


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _cut(value: str | None) -> str | None:
    return value[:TEXT_CHARS] if value is not None else None
