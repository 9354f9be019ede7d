"""The state of an outbound message, and the one set of rules that merges two states.

Every status callback of a message says something about it (sent, delivered, read or
failed, and when); its state is what all of them say together. Callbacks arrive late,
twice, and out of order, so the rules are associative and, but for FIRST_KNOWN,
commutative: the state after a sequence of callbacks does not depend on where a consumer
splits it into batches. The PostgreSQL sink merges the callbacks of one batch with
`OutboundState.merge` and renders the same `MERGE_RULES` as its upsert
(`sinks/postgres.py`), so the two can never disagree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any


class Rule(enum.Enum):
    """How a field of two states of one message becomes the field of the merged state."""

    HIGHEST = "highest"  # the larger value; an unknown (None) one never wins
    EARLIEST = "earliest"  # the smaller value; an unknown (None) one never wins
    ANY = "any"  # true once either is true
    FIRST_KNOWN = "first_known"  # the first value that is neither None nor ""


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

    def merge(self, later: OutboundState) -> OutboundState:
        """This state with `later` (a callback that arrived after it) applied."""
        merged = {name: _apply(rule, getattr(self, name), getattr(later, name))
                  for name, rule in MERGE_RULES.items()}
        return replace(self, **merged)


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
}
TEXT_FIELDS = frozenset(f.name for f in fields(OutboundState) if str(f.type).startswith("str"))


def _known(value: Any) -> bool:
    return value is not None and value != ""


def _apply(rule: Rule, first: Any, second: Any) -> Any:
    if rule is Rule.FIRST_KNOWN:
        return first if _known(first) else second
    if rule is Rule.ANY:
        return bool(first or second)
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second) if rule is Rule.HIGHEST else min(first, second)
