"""States folded from the routed events, published on each change on a compacted topic that
is also the table's changelog.

A `StateFold` names the table key of an event and merges the event into the stored state,
returning the new state, or None when the event changes nothing. `register_state` declares
a Faust table for it; dedup applies every registered fold to each event it routes, in the
same pass (`dedup.py`):

- the events a fold takes (statuses, keyed by message id; incoming messages, keyed by
  contact) sit in the keyed partition of that key, so the table's partition is the keyed
  record's. Folding in dedup's pass, rather than in agents that read the per-type topics
  again, spares every event a second trip through Faust (it cut the worker to a quarter
  of its speed: docs/performance.md);
- the published topic (`<prefix>.message.state`, `<prefix>.contact.window`) is the table's
  changelog: each change is one record, written into the keyed record's partition, that
  consumers read and that a restart, or another worker taking the partition, recovers the
  table from (as a Kafka Streams KTable built from its source topic). So the table holds
  exactly what was published, and a replay after a crash can only publish a state at least
  as far along, never one that goes backwards. The topic must have as many partitions as
  the keyed topic (`check_state_partitions`);
- the store is written directly and the record sent like any output (as dedup does:
  Faust's own table writes crawl under batches; `_changelog.py`);
- the local store keeps, beside each state, the keyed position of the event that last
  changed it. The store is written before its record is acknowledged, so after a crash it
  may hold a state whose record was lost with the process; dedup routes the event read
  again at the same position, and finding itself there, it publishes the state again. Any
  other event that changes nothing publishes nothing. A state recovered from the topic has
  no position (its record was published);
- the keyed record is acked once all its outputs, states included, are delivered
  (`_output.py`); an event whose state could not be published is dead-lettered, and the
  store keeps what it had applied (the next change of that key publishes it; undoing it
  could publish a state behind one the broker did take without saying so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from qikflow.size_budget import TOPIC_LIMIT
from streams._changelog import ChangelogOffsets
from streams._output import Delivery, Output
from streams._store import PartitionStore
from streams.event_facts import EventFacts, EventFactsError
from streams.events import Event
from streams.headers import EVENT_ID, EVENT_TYPE

if TYPE_CHECKING:
    from streams.context import StreamsApp

State = TypeVar("State")
_SEPARATOR = b"\n"


@dataclass(frozen=True, slots=True)
class StateFold(Generic[State]):
    """What one state fold does with an event; see the module doc."""

    key: Callable[[EventFacts], bytes | None]  # the table and record key, None: not this fold
    fold: Fold[State]  # the new state, None if unchanged
    encode: Callable[[State], bytes]  # the state as the table and the topic keep it
    decode: Callable[[bytes], State]
    record_type: str  # `message.state`, the `qikflow-event-type` header


Fold = Callable[[State | None, EventFacts], State | None]


def merging(of_event: Callable[[EventFacts], State | None],
            merge: Callable[[State, State], State]) -> Fold[State]:
    """A fold that merges what `of_event` makes of an event (None: nothing) into the
    current state, and says None when the merged state is the current one."""
    def fold(current: State | None, event: EventFacts) -> State | None:
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
    """(position, state) from a table value; the position is empty for a state recovered
    from the topic (the state's JSON has no line break)."""
    if value is None:
        return None
    position, _, state = value.rpartition(_SEPARATOR)
    return position, state


class StateTable(Generic[State]):
    """The table of one state fold: RocksDB read and written directly, each change sent as
    an output of the keyed record, the topic's offsets persisted once per batch."""

    def __init__(self, streams: StreamsApp, table: Any, fold: StateFold[State],
                 name: str, event_types: Sequence[str], topic: StateTopic) -> None:
        self._store = PartitionStore(table)
        self._fold = fold
        self._output = Output(streams, name)
        self.name = name
        self.event_types = frozenset(event_types)
        self.topic = topic
        self.changelog = ChangelogOffsets(self._store.faust_store)
        self.unchanged = streams.metrics.state_unchanged.labels(agent=name)
        self.republished = streams.metrics.state_republished.labels(agent=name)
        self.published = streams.metrics.emitted.labels(agent=name)
        self._record_type = fold.record_type.encode()

    async def apply(self, delivery: Delivery, value: bytes, event_id: str,
                    position: bytes) -> None:
        """Fold one routed event (its JSON) into the table and publish the change, if any.
        `delivery` is that of the keyed record the event came in."""
        step = self.step(_facts(value), position, delivery.source.partition)
        if step is not None:
            key, state = step
            await self.write(delivery, key, self._fold.encode(state), position, event_id)

    def step(self, event: EventFacts, position: bytes,
             partition: int) -> tuple[bytes, State] | None:
        """The table key and the state to publish for `event` (of keyed `partition`), or
        None."""
        key = self._fold.key(event)
        if key is None:
            return None
        stored = _stored(self._store.get(partition, key))
        current = self._fold.decode(stored[1]) if stored is not None else None
        changed = self._fold.fold(current, event)
        if changed is not None:
            return key, changed
        if stored is not None and current is not None and stored[0] == position:
            self.republished.inc()  # this very event, read again: publish its state again
            return key, current
        self.unchanged.inc()
        return None

    async def write(self, delivery: Delivery, key: bytes, encoded: bytes, position: bytes,
                    event_id: str) -> None:
        """Store the state with the position of its event; queue its record, the change
        published and the table's changelog both (sent by `flush()`)."""
        self._store.put(delivery.source.partition, key, position + _SEPARATOR + encoded)
        headers = [(EVENT_ID, event_id.encode()), (EVENT_TYPE, self._record_type)]
        await self._output.queue(delivery, self.topic.topic, key, encoded, headers,
                                 partition=delivery.source.partition,
                                 delivered=self.changelog.delivered)
        self.published.inc()

    async def flush(self) -> None:
        """Send the changes queued in this batch (dedup calls it at the end of a batch)."""
        await self._output.flush()


def _facts(value: bytes) -> EventFacts:
    """What the folds read of a routed event; JSON that is not one is read again with
    `Event.from_json`, whose error says what is wrong (and dead-letters the event)."""
    try:
        return EventFacts.of_routed_json(value)
    except EventFactsError:
        return EventFacts.of_event(Event.from_json(value))


def keyed_position(partition: int, offset: int, index: int) -> bytes:
    """Where an event sits in the keyed topic: what the table stores beside a state."""
    return f"{partition}:{offset}:{index}".encode()


def register_state(streams: StreamsApp, *, name: str, event_types: Sequence[str],
                   fold: StateFold[State], topic: StateTopic) -> StateTable[State]:
    """Declare the table `name`, folded by dedup from the events of `event_types` and
    published on `topic` (see the module doc)."""
    app, partitions = streams.app, streams.kafka.topic_partitions
    published = app.topic(
        topic.topic, key_type=bytes, value_type=bytes, key_serializer="raw",
        value_serializer="raw", partitions=partitions,
        # Read by Faust only to recover the table: not an agent's stream, nothing to ack.
        acks=False, internal=False, maxsize=131_072, allow_empty=True,
        config={
            "cleanup.policy": "compact,delete",
            "retention.ms": str(topic.retention_s * 1000),
            TOPIC_LIMIT: str(streams.budget.state_limit_bytes),
        },
    )
    table = app.Table(
        name, partitions=partitions, key_type=bytes, value_type=bytes,
        help=f"{name}: key -> <keyed position of the last change>\\n<state JSON>",
        options={"driver": "rocksdict", "ttl": topic.retention_s},
        changelog_topic=published,
    )
    state = StateTable(streams, table, fold, name, event_types, topic)
    streams.states.append(state)
    return state
