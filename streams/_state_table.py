"""Agents that fold events into a Faust table and publish every change of it.

A `StateFold` names the table key of an event and merges the event into the stored state,
returning the new state, or None when the event changes nothing. `state_agent` runs it:

- the table is a Faust table on RocksDB with a changelog topic, keyed so that its
  partition is the partition of the event; a restart, or another worker taking the
  partition, recovers it from the changelog;
- the store is written directly and the changelog record is sent like any output (as
  dedup does, `dedup.py`: Faust's own table writes crawl under batches; `_changelog.py`);
- a change is published only once its changelog record is acknowledged: whoever recovers
  the table later holds every state that was published, so a replay after a crash can only
  publish a state at least as far along (never one that goes backwards);
- the table keeps, beside each state, the position (topic, partition, offset) of the event
  that last changed it. An event read again that finds itself there publishes the state
  again: its first publication may have been lost with the process. Any other event that
  changes nothing publishes nothing;
- a source record is acked once its outputs are delivered (`_output.py`); one that fails
  is dead-lettered, and the state keeps what it had applied (merging is idempotent, so a
  re-drive of the record is harmless).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from qikflow.size_budget import TOPIC_LIMIT
from streams._changelog import ChangelogOffsets
from streams._output import Delivery, Output
from streams.dedup import make_current
from streams.events import Event
from streams.headers import EVENT_ID, EVENT_TYPE

if TYPE_CHECKING:
    from faust.types import EventT, Message

    from streams.context import StreamsApp

logger = logging.getLogger(__name__)

State = TypeVar("State")
_SEPARATOR = b"\n"


@dataclass(frozen=True, slots=True)
class StateFold(Generic[State]):
    """What one state agent does with an event; see the module doc."""

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


def _position(message: Message) -> bytes:
    return f"{message.topic}:{message.partition}:{message.offset}".encode()


class StateTable(Generic[State]):
    """The table of one state agent: RocksDB read and written directly, the changelog sent
    as an output, its persisted offsets written once per batch."""

    def __init__(self, streams: StreamsApp, table: Any, fold: StateFold[State],
                 output: Output) -> None:
        self._store = table.data
        self._changelog = table.changelog_topic.get_topic_name()
        self._fold = fold
        self._output = output
        self.changelog = ChangelogOffsets(self._store)
        self.unchanged = streams.metrics.state_unchanged.labels(agent=output.agent)
        self.republished = streams.metrics.state_republished.labels(agent=output.agent)

    def step(self, event: Event, message: Message) -> tuple[bytes, State] | None:
        """The table value to write and the state to publish for `event`, or None."""
        key = self._fold.key(event)
        if key is None:
            return None
        position = _position(message)
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

    async def write(self, delivery: Delivery, key: bytes, state: State) -> asyncio.Future[Any]:
        """Store the state with the position of its event; queue the changelog record."""
        value = _position(delivery.source) + _SEPARATOR + self._fold.encode(state)
        self._store[key] = value
        future = await self._output.send(delivery, self._changelog, key, value, [],
                                         partition=delivery.source.partition)
        future.add_done_callback(self.changelog.delivered)
        return future


@dataclass(slots=True)
class _Pending(Generic[State]):
    delivery: Delivery
    state: State
    changelog: asyncio.Future[Any]
    event_id: str


def state_agent(streams: StreamsApp, *, name: str, event_types: Sequence[str],
                fold: StateFold[State], topic: StateTopic) -> None:
    """Declare the table `name` and the agent that folds `event_types` into it and publishes
    each change on `topic` (see the module doc)."""
    app = streams.app
    settings = streams.settings
    partitions = streams.kafka.topic_partitions
    source = app.topic(*(streams.topics.event(t) for t in event_types),
                       key_serializer="raw", value_serializer="raw", partitions=partitions)
    table = app.Table(
        name, partitions=partitions, key_type=bytes, value_type=bytes,
        help=f"{name}: key -> <position of the last change>\\n<state JSON>",
        options={"driver": "rocksdict", "ttl": topic.retention_s},
        extra_topic_configs={
            "cleanup.policy": "compact,delete",
            "retention.ms": str(topic.retention_s * 1000),
            TOPIC_LIMIT: str(streams.budget.state_limit_bytes),
        },
    )
    output = Output(streams, name)
    states = StateTable(streams, table, fold, output)
    published = streams.metrics.emitted.labels(agent=name)
    record_type = fold.record_type.encode()

    async def keep_owned(app: Any, /, *assigned: Any, **kwargs: Any) -> None:
        (owned,) = assigned
        states.changelog.keep({tp.partition for tp in owned})

    app.on_partitions_assigned.connect(keep_owned)

    async def publish(pending: list[_Pending[State]]) -> None:
        """Publish each change whose changelog record is acknowledged; a change whose
        record failed is not published, and its source is dead-lettered on close."""
        await asyncio.gather(*(item.changelog for item in pending), return_exceptions=True)
        for item in pending:
            future = item.changelog
            if not future.cancelled() and future.exception() is None:
                headers = [(EVENT_ID, item.event_id.encode()), (EVENT_TYPE, record_type)]
                await output.send(item.delivery, topic.topic, fold.record_key(item.state),
                                  fold.encode(item.state), headers)
                published.inc()
            item.delivery.close()

    async def run(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, settings.batch_within_s):
            pending: list[_Pending[State]] = []
            for current in events:
                await _fold_one(current, output, states, pending)
            await publish(pending)
            states.changelog.persist()

    app.agent(source, name=name)(run)


async def _fold_one(current: EventT[Any], output: Output, states: StateTable[State],
                    pending: list[_Pending[State]]) -> None:
    make_current(current)  # table reads and writes go to this event's partition
    delivery = output.start(current.message)
    try:
        value = current.message.value
        if value is None:
            raise ValueError("a record without a value is no event")
        event = Event.from_json(value)
        step = states.step(event, current.message)
        if step is None:
            delivery.close()
            return
        key, state = step
        changelog = await states.write(delivery, key, state)
        pending.append(_Pending(delivery, state, changelog, event.event_id))
    except Exception as exc:  # noqa: BLE001 - any failure dead-letters this record only
        await output.fail(delivery, exc)
        delivery.close()
