"""Stage 2 of routing: drop copies of an event id seen within the window, fan out the rest.

The keyed topic holds every copy of one event id in one partition (see `router.py`), so
one table partition, owned by one worker at a time, decides for all copies. Each keyed
record is a bundle of events (`_keyed.py`); an event's position is (record offset, index
in the bundle). The table maps event id -> `<offset>:<index>:<first seen ms>`, the position
of the event that was routed. Remembering the position is what makes a replay safe: after
a crash the worker reads again from its last committed offset, finds ids it had already
recorded, and must not drop them, since their per-type records may never have reached
Kafka. An event is a copy only if the table holds the same id at an earlier position, less
than a window ago; the event that was routed, read again, is routed again (a copy in the
output, never a loss).

An event is remembered only if its output is delivered: the per-type record is queued
first, then the table entry and its changelog record; if an output of the event fails,
the entry is put back as it was (the changelog gets the old value, or a tombstone) before
the event is dead-lettered, so a resend or a re-drive of it is routed, not dropped as a
copy. Event ids longer than TABLE_KEY_BYTES are keyed by their SHA-256, which bounds the
changelog records and Faust's key index whatever ids arrive.

The table is an expiring table on RocksDB (rocksdict) with a changelog topic. Faust's own
windowed tables (`.tumbling(expires=...)`) keep every key of the live windows in a Python
set until it expires, which at thousands of events a second over 24 h is hundreds of
millions of objects in memory. Here nothing is held per key in memory: RocksDB drops
entries older than the window at compaction (its TTL), the changelog topic drops them by
`retention.ms` (`cleanup.policy=compact,delete`), and the first-seen time in each value
makes the window exact whatever compaction has not yet removed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from qikflow.size_budget import TOPIC_LIMIT
from streams import headers as names
from streams._changelog import ChangelogOffsets
from streams._keyed import KeyedBundleError, KeyedEvent, read_keyed
from streams._output import Delivery, Original, Output
from streams._state_table import StateTable, keyed_position
from streams._store import PartitionStore
from streams.budget import TABLE_KEY_BYTES

if TYPE_CHECKING:
    from faust.types import EventT

    from streams.context import StreamsApp

logger = logging.getLogger(__name__)

TABLE = "dedup"


def table_key(event_id: str) -> bytes:
    """The table key of an event id: the id, or `sha256:<hex>` of an id longer than
    TABLE_KEY_BYTES (ids that long are not routed by the parsers, but a replayed record may
    carry one)."""
    encoded = event_id.encode()
    if len(encoded) <= TABLE_KEY_BYTES:
        return encoded
    return b"sha256:" + hashlib.sha256(encoded).hexdigest().encode()


def seen_value(offset: int, index: int, first_seen_ms: int) -> bytes:
    return f"{offset}:{index}:{first_seen_ms}".encode()


def parse_seen(value: bytes) -> tuple[tuple[int, int], int]:
    """((offset, index), first seen ms); `<offset>:<ms>`, from before bundles, is index 0."""
    parts = value.decode().split(":")
    if len(parts) == 2:
        return (int(parts[0]), 0), int(parts[1])
    return (int(parts[0]), int(parts[1])), int(parts[2])


class HandledOffsets:
    """The keyed offsets this process has handled, per partition, as one range each.

    Faust sometimes hands a worker records it has already handled: after a rebalance or a
    restart it starts fetching before "Seek stream partitions to committed offsets", and
    the seek goes back to the committed offset. The table cannot tell such a re-read from a
    replay after a crash (same position), and a replay must be routed again; a record this
    very process handled need not be, since its outputs are delivered or in flight (and
    dead-lettered if they fail). A range only grows upwards from the first offset handled,
    so a seek below it never skips a record this process has not seen.
    """

    def __init__(self) -> None:
        self._ranges: dict[int, tuple[int, int]] = {}

    def already(self, partition: int, offset: int) -> bool:
        handled = self._ranges.get(partition)
        return handled is not None and handled[0] <= offset <= handled[1]

    def add(self, partition: int, offset: int) -> None:
        handled = self._ranges.get(partition)
        if handled is None:
            self._ranges[partition] = (offset, offset)
        elif offset > handled[1]:
            self._ranges[partition] = (handled[0], offset)

    def keep(self, partitions: set[int]) -> None:
        """Forget the partitions this worker no longer owns: another worker may handle
        them before they come back. Partitions it keeps were nobody else's in between."""
        for partition in list(self._ranges):
            if partition not in partitions:
                del self._ranges[partition]


class Deduplicator:
    """Decides per event of a keyed bundle: copy (drop and count) or first sighting (route)."""

    def __init__(self, streams: StreamsApp, table: Any) -> None:
        self._store = PartitionStore(table)
        self._changelog = table.changelog_topic.get_topic_name()
        self._topics = streams.topics
        self._metrics = streams.metrics
        self._window_ms = streams.settings.dedup_window_s * 1000
        self.output = Output(streams, names.DEDUP)
        self.changelog = ChangelogOffsets(self._store.faust_store)
        self.handled = HandledOffsets()
        self._states: list[StateTable[Any]] = streams.states
        self._open: list[Delivery] = []  # deliveries of this batch, closed after them

    async def handle(self, current: EventT[Any]) -> None:
        """Route the events of one keyed record (a Faust event); a failure
        dead-letters that event only (or the whole record, if it cannot be read)."""
        message = current.message
        partition, offset = message.partition, message.offset
        if self.handled.already(partition, offset):
            self._metrics.reread.inc()
            delivery = self.output.start(message)
            delivery.close()  # nothing to send: ack it
            return
        self.handled.add(partition, offset)
        try:
            events = read_keyed(message)
        except KeyedBundleError as exc:
            delivery = self.output.start(message)
            await self.output.fail(delivery, exc)
            delivery.close()
            return
        now_ms = int(time.time() * 1000)
        for index, event in enumerate(events):
            delivery = self.output.start(message, Original(event.key, event.value, event.headers))
            try:
                await self._handle(delivery, event, index, now_ms)
            except Exception as exc:  # noqa: BLE001 - any failure dead-letters this event only
                await self.output.fail(delivery, exc)
            finally:
                self._open.append(delivery)

    async def _handle(self, delivery: Delivery, event: KeyedEvent,
                      index: int, now_ms: int) -> None:
        offset = delivery.source.offset
        position = (offset, index)
        key = table_key(event.event_id)
        seen = self._store.get(delivery.source.partition, key)
        remember = True
        if seen is not None:
            seen_at, first_seen_ms = parse_seen(seen)
            fresh = now_ms - first_seen_ms < self._window_ms
            if fresh and seen_at < position:
                self._metrics.deduplicated.inc()
                return
            # seen_at == position: this very event, read again after a restart.
            remember = not fresh or seen_at > position
        await self.output.queue(
            delivery, self._topics.event(event.event_type), event.key, event.value,
            event.headers,
        )
        # Should an output fail, the entry goes back to what it was before this event (an
        # event read again had written it itself: then it goes).
        delivery.undo = functools.partial(self._forget, delivery, key,
                                          seen if remember else None)
        if remember:
            await self._remember(delivery, key, seen_value(offset, index, now_ms))
        self._metrics.count_routed(event.event_type)
        for state in self._states:
            if event.event_type in state.event_types:
                await state.apply(delivery, event.value, event.event_id,
                                  keyed_position(delivery.source.partition, offset, index))

    async def _remember(self, delivery: Delivery, key: bytes, value: bytes) -> None:
        """Write the table: local RocksDB now, the changelog record with the other outputs.

        `table[key] = value` would queue each changelog record in Faust's producer buffer,
        which a batch of writes fills at once; Faust then drains it one message per loop
        turn and the worker crawled (~13 events/s measured). So the store is written
        directly and the changelog record is sent like any output, into the partition of
        the source record as Faust would, and the source is acked only once it is delivered.
        """
        self._store.put(delivery.source.partition, key, value)
        await self.output.queue(delivery, self._changelog, key, value, [],
                                partition=delivery.source.partition,
                                delivered=self.changelog.delivered)

    async def _forget(self, delivery: Delivery, key: bytes, previous: bytes | None) -> None:
        """An output of the event failed: put its table entry back as it was before."""
        partition = delivery.source.partition
        if previous is None:
            self._store.delete(partition, key)
        else:
            self._store.put(partition, key, previous)
        await self.output.send(delivery, self._changelog, key, previous, [],
                               partition=delivery.source.partition)

    async def finish_batch(self) -> None:
        """Send what the batch queued, then release its records (each is acked once its
        outputs are delivered); tell the stores how far their changelogs go."""
        await self.output.flush()
        for state in self._states:
            await state.flush()
        opened, self._open = self._open, []
        for delivery in opened:
            delivery.close()
        self.changelog.persist()
        for state in self._states:
            state.changelog.persist()

    def keep_partitions(self, partitions: set[int]) -> None:
        """After a rebalance: forget what concerns the partitions this worker lost."""
        self.handled.keep(partitions)
        self.changelog.keep(partitions)
        for state in self._states:
            state.changelog.keep(partitions)


def register(streams: StreamsApp) -> None:
    """Declare the keyed topic, the dedup table and the dedup agent on the app."""
    app = streams.app
    settings = streams.settings
    window_ms = settings.dedup_window_s * 1000
    keyed = app.topic(
        streams.topics.keyed,
        key_serializer="raw",
        value_serializer="raw",
        partitions=streams.kafka.topic_partitions,
    )
    table = app.Table(
        TABLE,
        partitions=streams.kafka.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        help="Event ids routed within the dedup window: id -> <offset>:<index>:<first seen ms>.",
        # RocksDB TTL: entries older than the window go at compaction.
        options={"driver": "rocksdict", "ttl": settings.dedup_window_s},
        extra_topic_configs={
            "cleanup.policy": "compact,delete",
            "retention.ms": str(window_ms),
            TOPIC_LIMIT: str(streams.budget.changelog_limit_bytes),
        },
    )
    dedup = Deduplicator(streams, table)

    async def keep_owned(app: Any, /, *assigned: Any, **kwargs: Any) -> None:
        (partitions,) = assigned
        name = keyed.get_topic_name()
        dedup.keep_partitions({tp.partition for tp in partitions if tp.topic == name})

    app.on_partitions_assigned.connect(keep_owned)

    async def deduplicate(stream: Any) -> None:
        batches = stream.take_arriving(settings.batch_size, within=settings.batch_within_s)
        async for events in batches:
            for event in events:
                await dedup.handle(event)
            await dedup.finish_batch()

    app.agent(keyed, name=names.DEDUP)(deduplicate)

