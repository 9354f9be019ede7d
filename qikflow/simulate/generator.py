"""Deterministic Qikchat traffic: a timeline of planned webhooks plus their ground truth.

Tests, benchmarks and `qikflow simulate` all draw their traffic from here:

    generator = TrafficGenerator(seed=7, rate_per_s=200, duration_s=10)
    for webhook in generator:          # PlannedWebhook, in send order
        ...
    generator.truth                    # GroundTruth of everything yielded so far

The same seed and start time give the same bodies, byte for byte.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from qikflow.simulate._bodies import BodyFactory, Contact, user_id_only
from qikflow.simulate._notice_bodies import NOTICE_KINDS, notice_body
from qikflow.simulate.plan import (
    BodyFormat,
    Expected,
    ExpectedEvent,
    GroundTruth,
    PlannedWebhook,
)

# Share of incoming messages per mix type (a type, or `type.variant`); about 60% text.
MESSAGE_MIX: dict[str, float] = {
    "text": 58.5, "text.optout": 1.5, "image": 8, "video": 2, "audio": 5, "document": 4,
    "sticker": 3, "location": 2, "contacts": 1, "interactive.button_reply": 4,
    "interactive.list_reply": 3, "interactive.nfm_reply": 1, "button": 3, "reaction": 3,
    "order": 1, "system": 0.2, "edit": 0.5, "revoke": 0.3, "unknown": 0.5,
}
STAGES = ("processed", "sent", "delivered", "read")
DEFAULT_START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class TrafficMix:
    """The knobs of the traffic; the defaults are the realistic mix."""

    message_weights: dict[str, float] = field(default_factory=lambda: dict(MESSAGE_MIX))
    incoming_share: float = 0.45  # of new conversations: incoming vs an outbound send
    meta_share: float = 0.04  # bodies in Meta's Cloud API format
    meta_batch_share: float = 0.5  # of Meta bodies: several events in one body
    wrapped_share: float = 0.05  # Qikchat bodies wrapped once more in {"message": ...}
    duplicate_share: float = 0.01  # exact resends of an earlier body
    malformed_share: float = 0.004
    notice_share: float = 0.01  # template, account, preference, error, call, echo bodies
    failed_share: float = 0.03  # outbound messages that fail after `sent`
    undelivered_share: float = 0.04  # outbound messages only ever `sent`
    unread_share: float = 0.3  # delivered but never read
    out_of_order_share: float = 0.1  # of read messages: `read` arrives before `delivered`


@dataclass(order=True)
class _Step:
    """Status webhook(s) of one outbound message, due at `due_s`."""

    due_s: float
    seq: int
    message_id: str = field(compare=False)
    contact: Contact = field(compare=False)
    account: str | None = field(compare=False)
    statuses: tuple[str, ...] = field(compare=False)
    times: dict[str, float] = field(compare=False)
    meta: bool = field(compare=False)
    wrapped: bool = field(compare=False)
    error: tuple[int, str] | None = field(compare=False)


class TrafficGenerator:
    """Yields round(rate * duration) webhooks, one every 1/rate seconds.

    A slot goes to a malformed body or a resend by chance, else to the earliest status
    that is due, else to a new incoming message (after opening outbound conversations
    whose statuses fall due later). Statuses still pending at the end are never sent,
    and the ground truth reflects only what was sent.
    """

    def __init__(
        self,
        *,
        seed: int,
        rate_per_s: float,
        duration_s: float,
        accounts: Sequence[str | None] = (None,),
        start: datetime = DEFAULT_START,
        mix: TrafficMix | None = None,
    ) -> None:
        if rate_per_s <= 0 or duration_s <= 0:
            raise ValueError("rate and duration must be positive")
        self.seed = seed
        self.rate_per_s = rate_per_s
        self.total = max(1, round(rate_per_s * duration_s))
        self.accounts = tuple(accounts) or (None,)
        self.mix = mix or TrafficMix()
        self.truth = GroundTruth()
        self._rng = random.Random(seed)
        # Ids depend on the start time too, so two runs against one pipeline never collide.
        ids = random.Random(f"{seed}/{start.isoformat()}")
        self._bodies = BodyFactory(self._rng, ids, start)
        self._contacts = [self._bodies.contact() for _ in range(max(20, self.total // 10))]
        self._pending: list[_Step] = []
        self._seq = 0
        self._history: deque[PlannedWebhook] = deque(maxlen=500)
        self._recent_outbound: deque[str] = deque(maxlen=50)
        self._recent_inbound: deque[str] = deque(maxlen=50)
        self._notices = 0
        # Notices draw their shape from a source of their own (ids from `ids`, so another
        # start time gives other ids), leaving the draws of the other bodies alone.
        self._notice_rng = random.Random(f"{seed}/notices")
        self._malformed = 0
        # Every mix type appears early, so even a short run covers them all.
        self._roster = list(self.mix.message_weights)
        self._rng.shuffle(self._roster)

    def __iter__(self) -> Iterator[PlannedWebhook]:
        for index in range(self.total):
            webhook = self._next(index, index / self.rate_per_s)
            self.truth.record(webhook)
            if webhook.kind != "duplicate":
                self._history.append(webhook)
            yield webhook

    def _next(self, index: int, at_s: float) -> PlannedWebhook:
        mix = self.mix
        if self._notice_rng.random() < mix.notice_share:
            return self._notice(index, at_s)
        roll = self._rng.random()
        if roll < mix.malformed_share:
            return self._malformed_body(index, at_s)
        if roll < mix.malformed_share + mix.duplicate_share and self._history:
            original = self._rng.choice(self._history)
            return PlannedWebhook(index, original.body, original.account, at_s, "duplicate",
                                  original.expected, original.format, original.index)
        if self._pending and self._pending[0].due_s <= at_s:
            return self._status(index, at_s, heapq.heappop(self._pending))
        while self._rng.random() >= mix.incoming_share:
            self._open_outbound(at_s)
        return self._incoming(index, at_s)

    # -- incoming ---------------------------------------------------------------------

    def _mix_type(self) -> str:
        if self._roster:
            return self._roster.pop()
        weights = self.mix.message_weights
        return self._rng.choices(list(weights), weights=list(weights.values()))[0]

    def _incoming(self, index: int, at_s: float) -> PlannedWebhook:
        rng, bodies = self._rng, self._bodies
        contact, account = rng.choice(self._contacts), rng.choice(self.accounts)
        meta = rng.random() < self.mix.meta_share
        batched = meta and rng.random() < self.mix.meta_batch_share
        count = 1 + rng.randint(1, 2) if batched else 1
        items, events, optouts = [], [], []
        for _ in range(count):
            mix_type = self._mix_type()
            message_id = bodies.wamid()
            reacted = rng.choice(self._recent_outbound) if self._recent_outbound else None
            own = self._recent_inbound[-1] if self._recent_inbound else None
            wire, content = bodies.content(mix_type, meta, reacted, own)
            items.append((message_id, wire, content))
            name = mix_type.partition(".")[0]
            events.append(ExpectedEvent(message_id, f"message.{name}", message_id))
            self._recent_inbound.append(message_id)
            if mix_type == "text.optout":
                optouts.append(message_id)
        body_format: BodyFormat
        if meta:
            # Opt-outs need a number to be stored against (contact_optouts).
            anonymous = not optouts and user_id_only(items[0][0])
            body = bodies.meta_messages(contact, items, at_s, reacted, anonymous)
            body_format = "meta"
        else:
            wrapped = rng.random() < self.mix.wrapped_share
            message_id, wire, content = items[0]
            body = bodies.qikchat_message(message_id, contact, wire, content, at_s, wrapped,
                                          reacted)
            body_format = "qikchat-wrapped" if wrapped else "qikchat"
        expected = Expected("events", tuple(events), tuple(optouts))
        return PlannedWebhook(index, body, account, at_s, "message", expected, body_format)

    # -- outbound lifecycles ----------------------------------------------------------

    def _open_outbound(self, at_s: float) -> None:
        rng, mix = self._rng, self.mix
        meta = rng.random() < mix.meta_share
        message_id = self._bodies.wamid() if meta else self._bodies.qikchat_id()
        self._recent_outbound.append(message_id)
        times = {"processed": at_s, "sent": at_s + rng.uniform(0.3, 2.0)}
        times["delivered"] = times["sent"] + rng.uniform(0.5, 4.0)
        fate = rng.random()
        if fate < mix.failed_share:
            times["failed"] = times.pop("delivered") + rng.uniform(1.0, 5.0)
            plan = [("sent", times["sent"]), ("failed", times["failed"])]
        elif fate < mix.failed_share + mix.undelivered_share:
            del times["delivered"]
            plan = [("sent", times["sent"])]
        elif fate < mix.failed_share + mix.undelivered_share + mix.unread_share:
            plan = [("sent", times["sent"]), ("delivered", times["delivered"])]
        elif rng.random() < mix.out_of_order_share:
            # The read receipt overtakes the delivery receipt.
            times["read"] = times["delivered"] + rng.uniform(0.2, 1.5)
            plan = [("sent", times["sent"]), ("read", times["read"]),
                    ("delivered", times["read"] + rng.uniform(0.5, 3.0))]
        else:
            times["read"] = times["delivered"] + 1.0 + min(rng.expovariate(1 / 12), 90.0)
            plan = [("sent", times["sent"]), ("delivered", times["delivered"]),
                    ("read", times["read"])]
        groups: list[tuple[tuple[str, ...], float]] = [((s,), due) for s, due in plan]
        if meta and len(plan) > 1 and rng.random() < mix.meta_batch_share:
            groups[:2] = [(("sent", plan[1][0]), plan[1][1])]
        contact, account = rng.choice(self._contacts), rng.choice(self.accounts)
        wrapped = not meta and rng.random() < mix.wrapped_share
        error = self._bodies.error() if "failed" in times else None
        for statuses, due in groups:
            self._seq += 1
            heapq.heappush(self._pending, _Step(due, self._seq, message_id, contact, account,
                                                statuses, times, meta, wrapped, error))

    def _status(self, index: int, at_s: float, step: _Step) -> PlannedWebhook:
        events = tuple(ExpectedEvent(f"{step.message_id}:{status}", f"status.{status}",
                                     step.message_id) for status in step.statuses)
        if step.meta:
            items = [(step.message_id, step.contact, status, step.times[status],
                      step.error if status == "failed" else None) for status in step.statuses]
            body = self._bodies.meta_statuses(items)
        else:
            status = step.statuses[0]
            # A receipt carries the timestamps of the stages reached by then.
            reached = STAGES[: STAGES.index(status) + 1] if status in STAGES else STAGES[:2]
            known = {name: step.times[name] for name in (*reached, status)
                     if name in step.times}
            error = step.error if status == "failed" else None
            body = self._bodies.qikchat_status(step.message_id, step.contact, status, known,
                                               step.wrapped, error)
        body_format: BodyFormat = (
            "meta" if step.meta else "qikchat-wrapped" if step.wrapped else "qikchat"
        )
        return PlannedWebhook(index, body, step.account, at_s, "status",
                              Expected("events", events), body_format)

    # -- notices ----------------------------------------------------------------------

    def _notice(self, index: int, at_s: float) -> PlannedWebhook:
        """Every kind in turn (so a short run covers them), for a random contact."""
        kind = NOTICE_KINDS[self._notices % len(NOTICE_KINDS)]
        self._notices += 1
        rng = self._notice_rng
        outbound = rng.choice(self._recent_outbound) if self._recent_outbound else None
        inbound = rng.choice(self._recent_inbound) if self._recent_inbound else None
        body, events, optouts = notice_body(
            kind, rng, str(self._bodies.ids.randint(10**14, 10**15 - 1)),
            rng.choice(self._contacts), int(self._bodies.unix(at_s)), outbound, inbound)
        return PlannedWebhook(index, body, rng.choice(self.accounts), at_s, "notice",
                              Expected("events", events, optouts), "meta")

    # -- malformed --------------------------------------------------------------------

    def _malformed_body(self, index: int, at_s: float) -> PlannedWebhook:
        body, outcome = self._bodies.malformed(self._malformed % 3, self._bodies.qikchat_id())
        self._malformed += 1
        return PlannedWebhook(index, body, self._rng.choice(self.accounts), at_s, "malformed",
                              Expected(outcome), "malformed")


def generate(
    *,
    seed: int,
    rate_per_s: float,
    duration_s: float,
    accounts: Sequence[str | None] = (None,),
    start: datetime = DEFAULT_START,
    mix: TrafficMix | None = None,
) -> tuple[list[PlannedWebhook], GroundTruth]:
    """The whole plan at once, for tests and benchmarks that want a list."""
    generator = TrafficGenerator(seed=seed, rate_per_s=rate_per_s, duration_s=duration_s,
                                 accounts=accounts, start=start, mix=mix)
    return list(generator), generator.truth
