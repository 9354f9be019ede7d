"""States folded from the routed events and published on each change.

A `StateFold` names the table key of an event and merges the event into the stored state,
returning the new state, or None when the event changes nothing. `register_state` declares
a Faust table for it; dedup applies every registered fold to each event it routes, in the
same pass (`dedup.py`):

- the events a fold takes (statuses, keyed by message id; incoming messages, keyed by
  contact) sit in the keyed partition of that key, so the table's partition is the keyed
  record's; a restart, or another worker taking the partition, recovers it from its
  changelog. Folding in dedup's pass, rather than in agents that read the per-type topics
  again, spares every event a second trip through Faust (it cut the worker to a quarter
  of its speed: docs/performance.md);
- the store is written directly and the changelog record is sent like any output (as
  dedup does: Faust's own table writes crawl under batches; `_changelog.py`);
- a change is published only once its changelog record is acknowledged, at the end of the
  batch: whoever recovers the table later holds every state that was published, so a
  replay after a crash can only publish a state at least as far along (never one that goes
  backwards);
- the table keeps, beside each state, the keyed position of the event that last changed
  it. Dedup routes an event read again after a crash at the same position; finding itself
  there, it publishes the state again (its first publication may have been lost with the
  process). Any other event that changes nothing publishes nothing;
- the keyed record is acked once all its outputs, states included, are delivered
  (`_output.py`); an event whose state could not be stored or published is dead-lettered,
  and the state keeps what it had applied (merging is idempotent, so a re-drive is
  harmless).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from qikflow.size_budget import TOPIC_LIMIT
from streams._changelog import ChangelogOffsets
from streams._output import Delivery, Output
from streams.events import Event
from streams.headers import EVENT_ID, EVENT_TYPE

if TYPE_CHECKING:
    from streams.context import StreamsApp

State = TypeVar("State")
_SEPARATOR = b"\n"


@dataclass(frozen=True, slots=True)
class StateFold(Generic[State]):
    """What one state fold does with an event; see the module doc."""

    key: Callable[[Event], bytes | None]  # the table key, None to ignore the event
    fold: Fold[State]  # the new state, None if unchanged
    encode: Callable[[State], bytes]  # the state as the table and the topic keep it
    decode: Callable[[bytes], State]
    record_key: Callable[[State], bytes]  # the key of the published record
    record_type: str  # `message.state`, the `qikflow-event-type` header


Fold = Callable[[State | None, Event], State | None]


def merging(of_event: Callable[[Event], State | None],
            merge: Callable[[State, State], State]) -> Fold[State]:
    """A fold that merges what `of_event` makes of an event (None: nothing) into the
    current state, and says None when the merged state is the current one."""
    def fold(current: State | None, event: Event) -> State | None:
        made = of_event(event)
        if made is None:
            return None
        merged = made if current is None else merge(current, made)
        return None if merged == current else merged
    return fold


@dataclass(frozen=True, slots=True)
class StateTopic:
    """The compacted topic the changes go to, and how long the table keeps a state."""

    topic: str
    retention_s: int


def _stored(value: bytes | None) -> tuple[bytes, bytes] | None:
    """(position, state) from a table value."""
    if value is None:
        return None
    position, _, state = value.partition(_SEPARATOR)
    return position, state


class StateTable(Generic[State]):
    """The table of one state fold: RocksDB read and written directly, the changelog sent
    as an output of the keyed record, its persisted offsets written once per batch."""

    def __init__(self, streams: StreamsApp, table: Any, fold: StateFold[State],
                 name: str, event_types: Sequence[str], topic: StateTopic) -> None:
        self._store = table.data
        self._changelog = table.changelog_topic.get_topic_name()
        self._fold = fold
        self._output = Output(streams, name)
        self.name = name
        self.event_types = frozenset(event_types)
        self.topic = topic
        self.changelog = ChangelogOffsets(self._store)
        self.unchanged = streams.metrics.state_unchanged.labels(agent=name)
        self.republished = streams.metrics.state_republished.labels(agent=name)
        self.published = streams.metrics.emitted.labels(agent=name)
        self._record_type = fold.record_type.encode()

    async def apply(self, delivery: Delivery, event_id: str, value: bytes,
                    position: bytes) -> _Pending[State] | None:
        """Fold one routed event (its JSON) into the table; the change to publish once its
        changelog record is acknowledged, or None. Faust's current event must be the keyed
        record the event came in (`make_current`)."""
        step = self.step(Event.from_routed_json(value), position)
        if step is None:
            return None
        key, state = step
        encoded = self._fold.encode(state)
        changelog = await self.write(delivery, key, encoded, position)
        return _Pending(self, delivery, self._fold.record_key(state), encoded, changelog,
                        event_id)

    def step(self, event: Event, position: bytes) -> tuple[bytes, State] | None:
        """The table key and the state to publish for `event`, or None."""
        key = self._fold.key(event)
        if key is None:
            return None
        stored = _stored(self._store.get(key))
        current = self._fold.decode(stored[1]) if stored is not None else None
        changed = self._fold.fold(current, event)
        if changed is not None:
            return key, changed
        if stored is not None and current is not None and stored[0] == position:
            self.republished.inc()  # this very event, read again: publish its state again
            return key, current
        self.unchanged.inc()
        return None

    async def write(self, delivery: Delivery, key: bytes, encoded: bytes,
                    position: bytes) -> asyncio.Future[Any]:
        """Store the state with the position of its event; queue the changelog record."""
        value = position + _SEPARATOR + encoded
        self._store[key] = value
        future = await self._output.send(delivery, self._changelog, key, value, [],
                                         partition=delivery.source.partition)
        future.add_done_callback(self.changelog.delivered)
        return future

    async def publish(self, delivery: Delivery, key: bytes, encoded: bytes,
                      event_id: str) -> None:
        headers = [(EVENT_ID, event_id.encode()), (EVENT_TYPE, self._record_type)]
        await self._output.send(delivery, self.topic.topic, key, encoded, headers)
        self.published.inc()


@dataclass(slots=True)
class _Pending(Generic[State]):
    """A change waiting for its changelog record before it is published."""

    table: StateTable[State]
    delivery: Delivery
    key: bytes  # of the published record
    encoded: bytes  # the state, as published
    changelog: asyncio.Future[Any]
    event_id: str


async def publish(pending: Sequence[_Pending[Any]]) -> None:
    """Publish each change whose changelog record is acknowledged; one whose record failed
    is not published (its event is dead-lettered when its delivery closes)."""
    if not pending:
        return
    await asyncio.gather(*(item.changelog for item in pending), return_exceptions=True)
    for item in pending:
        future = item.changelog
        if not future.cancelled() and future.exception() is None:
            await item.table.publish(item.delivery, item.key, item.encoded, item.event_id)


def keyed_position(partition: int, offset: int, index: int) -> bytes:
    """Where an event sits in the keyed topic: what the table stores beside a state."""
    return f"{partition}:{offset}:{index}".encode()


def register_state(streams: StreamsApp, *, name: str, event_types: Sequence[str],
                   fold: StateFold[State], topic: StateTopic) -> StateTable[State]:
    """Declare the table `name`, folded by dedup from the events of `event_types` and
    published on `topic` (see the module doc)."""
    partitions = streams.kafka.topic_partitions
    table = streams.app.Table(
        name, partitions=partitions, key_type=bytes, value_type=bytes,
        help=f"{name}: key -> <keyed position of the last change>\\n<state JSON>",
        options={"driver": "rocksdict", "ttl": topic.retention_s},
        extra_topic_configs={
            "cleanup.policy": "compact,delete",
            "retention.ms": str(topic.retention_s * 1000),
            TOPIC_LIMIT: str(streams.budget.state_limit_bytes),
        },
    )
    state = StateTable(streams, table, fold, name, event_types, topic)
    streams.states.append(state)
    return state
