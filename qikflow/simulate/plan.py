"""What the simulator sends and what the pipeline should make of it: the ground truth."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Literal

# Highest status wins; `failed` is recorded beside it; `played` ranks with `read` (whose
# name the state keeps); `deleted` moves no state. Mirrors streams.events.STATUS_RANK,
# restated so the simulator does not depend on the code it checks.
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 3}
RANK_NAMES = {1: "sent", 2: "delivered", 3: "read"}
NO_STATE = frozenset({"deleted"})
# The notice types (streams/notices.py): not incoming messages, even `message.echo`.
NOTICE_TYPES = frozenset({
    "template.status", "account.update", "contact.preferences", "provider.error",
    "call.connect", "call.terminate", "call.status", "message.echo"})

WebhookKind = Literal["message", "status", "notice", "malformed", "duplicate"]
# `events`: parsed into per-type events; `unknown`: a JSON envelope with an event name we do
# not know (topic `<prefix>.unknown`); `dlq`: not an envelope at all (topic `<prefix>.dlq`).
Outcome = Literal["events", "unknown", "dlq"]
BodyFormat = Literal["qikchat", "qikchat-wrapped", "meta", "malformed"]


def body_digest(body: bytes) -> bytes:
    """A 16-byte fingerprint of a body: ground truth keeps this instead of the bytes."""
    return hashlib.blake2b(body, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class ExpectedEvent:
    """One normalised event the pipeline must produce, identified as streams.events does."""

    event_id: str
    type: str
    message_id: str

    @property
    def kind(self) -> str:
        """`message`, `status`, or `notice` (its `message_id` is then empty)."""
        if self.type in NOTICE_TYPES:
            return "notice"
        return self.type.partition(".")[0]

    @property
    def status(self) -> str | None:
        kind, _, name = self.type.partition(".")
        return name if kind == "status" else None


@dataclass(frozen=True, slots=True)
class Expected:
    """The expected outcome of one body."""

    outcome: Outcome
    events: tuple[ExpectedEvent, ...] = ()
    optout_message_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedWebhook:
    """One POST the simulator will make, `send_at_s` seconds after the run starts."""

    index: int
    body: bytes
    account: str | None
    send_at_s: float
    kind: WebhookKind
    expected: Expected
    format: BodyFormat
    duplicate_of: int | None = None

    @property
    def digest(self) -> bytes:
        return body_digest(self.body)


@dataclass(frozen=True, slots=True)
class OutboundState:
    """Final state of an outbound message: highest status by rank, and whether it failed."""

    status: str | None
    failed: bool


@dataclass(frozen=True, slots=True)
class BodyRecord:
    """What ground truth keeps per planned webhook (the body only as a digest)."""

    index: int
    digest: bytes
    size: int
    account: str | None
    kind: WebhookKind
    format: BodyFormat
    expected: Expected


class GroundTruth:
    """Every planned webhook and its expected outcome.

    Each question takes `acked`, the indexes of webhooks that got 200; only those must
    reach the pipeline. `None` means every planned webhook.
    """

    def __init__(self) -> None:
        self.records: list[BodyRecord] = []

    def record(self, webhook: PlannedWebhook) -> None:
        self.records.append(
            BodyRecord(
                index=webhook.index,
                digest=webhook.digest,
                size=len(webhook.body),
                account=webhook.account,
                kind=webhook.kind,
                format=webhook.format,
                expected=webhook.expected,
            )
        )

    def __len__(self) -> int:
        return len(self.records)

    def _acked(self, acked: Collection[int] | None) -> Iterator[BodyRecord]:
        if acked is None:
            yield from self.records
        else:
            yield from (record for record in self.records if record.index in acked)

    def raw_bodies(self, acked: Collection[int] | None = None) -> Counter[bytes]:
        """Body digest -> how many acked webhooks carried it (each must be in `<prefix>.raw`)."""
        return Counter(record.digest for record in self._acked(acked))

    def quarantined_bodies(self, acked: Collection[int] | None = None) -> dict[bytes, Outcome]:
        """Digests of acked bodies that must land in `<prefix>.unknown` or `<prefix>.dlq`."""
        return {
            record.digest: record.expected.outcome
            for record in self._acked(acked)
            if record.expected.outcome != "events"
        }

    def events(self, acked: Collection[int] | None = None) -> dict[str, ExpectedEvent]:
        """Event id -> expected event, each once however many bodies carried it."""
        found: dict[str, ExpectedEvent] = {}
        for record in self._acked(acked):
            for event in record.expected.events:
                found.setdefault(event.event_id, event)
        return found

    def inbound_message_ids(self, acked: Collection[int] | None = None) -> set[str]:
        return {e.message_id for e in self.events(acked).values() if e.kind == "message"}

    def status_events(self, acked: Collection[int] | None = None) -> set[tuple[str, str]]:
        """(message id, status) of every expected status event."""
        return {
            (e.message_id, e.status)
            for e in self.events(acked).values()
            if e.status is not None
        }

    def outbound_states(self, acked: Collection[int] | None = None) -> dict[str, OutboundState]:
        """Message id -> final state, from the statuses that reached the pipeline."""
        rank: dict[str, int] = {}
        failed: dict[str, bool] = {}
        for message_id, status in self.status_events(acked):
            if status in NO_STATE:
                continue
            rank.setdefault(message_id, 0)
            failed.setdefault(message_id, False)
            if status == "failed":
                failed[message_id] = True
            rank[message_id] = max(rank[message_id], STATUS_RANK.get(status, 0))
        return {
            message_id: OutboundState(RANK_NAMES.get(value), failed[message_id])
            for message_id, value in rank.items()
        }

    def notice_ids(self, acked: Collection[int] | None = None) -> set[str]:
        """Event ids of every expected notice (the `notices` table's key)."""
        return {e.event_id for e in self.events(acked).values() if e.kind == "notice"}

    def optout_message_ids(self, acked: Collection[int] | None = None) -> set[str]:
        return {
            message_id
            for record in self._acked(acked)
            for message_id in record.expected.optout_message_ids
        }

    def type_counts(self) -> Counter[str]:
        """Event type -> planned events of that type (after dedup): the traffic mix."""
        return Counter(event.type for event in self.events().values())
