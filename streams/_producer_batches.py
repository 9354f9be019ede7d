"""Records queued into producer batches, one per topic partition, and sent a batch at a time.

Dedup sends three records per event (the per-type record, its table's changelog record and,
for most, a state), each with aiokafka's `send()`: a metadata wait, the partitioner, an
append and one future per record, then one done-callback per record to count deliveries.
That was 14 µs of CPU a record against 5 µs appended to a `BatchBuilder` and sent with
`send_batch()` (measured against the local broker), over a third of dedup's own cost. So
dedup queues its records here and sends them once per batch of keyed records; each batch's
single future settles every delivery waiting on it.

Per partition the order is the order of `queue()` calls: a record sent alone (one too large
to share a batch, or an agent's direct send to the same partition: `send_before`) first sends
what is queued for its partition. A batch the broker refuses fails every delivery in it,
as one refused `send()` batch did; each is then dead-lettered (`_output.py`).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams._keyed import PartitionCache

Delivered = Any  # a callable (topic, partition, last offset) -> None
CACHE_BYTES = 4 * 1024 * 1024  # per topic: the partitions of recent keys


class Awaiting(Protocol):
    """What waits for a batch: told once it is sent, then once it is settled."""

    def expect(self) -> None: ...

    def settle(self, error: BaseException | None) -> None: ...


@dataclass(slots=True)
class _Filling:
    """The batch being filled for one topic partition."""

    builder: Any
    waiting: dict[int, Awaiting] = field(default_factory=dict)
    records: int = 0
    delivered: Delivered | None = None  # told the offset of its last record once delivered


class ProducerBatches:
    """The batches being filled, per topic partition, for one aiokafka producer."""

    def __init__(self) -> None:
        self._filling: dict[tuple[str, int], _Filling] = {}
        self._partitions: dict[str, tuple[int, PartitionCache]] = {}

    async def partition(self, producer: Any, topic: str, key: bytes) -> int:
        """The partition `send()` would choose for `key` under Faust's producer (aiokafka's
        default partitioner: murmur2 of the key, as the Java client), remembered per key as
        the router does (`PartitionCache`): a message's statuses share a key."""
        known = self._partitions.get(topic)
        if known is None:
            count = len(await producer.partitions_for(topic))
            known = self._partitions[topic] = (count, PartitionCache(count, CACHE_BYTES))
        return known[1](key)

    async def queue(self, producer: Any, awaiting: Awaiting, topic: str, partition: int,
                    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]],
                    delivered: Delivered | None = None) -> None:
        """Append one record to its partition's batch (sending that batch first when full)."""
        filling = self._filling.get((topic, partition))
        if filling is None:
            filling = self._start(producer, topic, partition, delivered)
        if filling.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            await self.send((topic, partition), producer)
            filling = self._start(producer, topic, partition, delivered)
            filling.builder.append(timestamp=None, key=key, value=value, headers=headers)
        filling.records += 1
        filling.waiting[id(awaiting)] = awaiting

    def _start(self, producer: Any, topic: str, partition: int,
               delivered: Delivered | None) -> _Filling:
        filling = self._filling[(topic, partition)] = _Filling(producer.create_batch(),
                                                                delivered=delivered)
        return filling

    def holds(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self._filling

    async def send(self, where: tuple[str, int], producer: Any) -> None:
        """Send the batch of one topic partition; a refusal settles its deliveries with the
        error (never raised: each delivery dead-letters its record)."""
        filling = self._filling.pop(where)
        for awaiting in filling.waiting.values():
            awaiting.expect()
        topic, partition = where
        try:
            future = await producer.send_batch(filling.builder, topic, partition=partition)
        except Exception as exc:  # noqa: BLE001 - each delivery dead-letters its record
            _settle(filling, exc)
            return
        future.add_done_callback(functools.partial(_settled, filling, where))

    async def send_all(self, producer: Any) -> None:
        """Send every batch being filled (at the end of a batch of consumed records); a topic
        whose partition count changed starts a new cache."""
        for where in list(self._filling):
            await self.send(where, producer)
        for topic, (count, _) in list(self._partitions.items()):
            if len(await producer.partitions_for(topic)) != count:
                del self._partitions[topic]


def _settled(filling: _Filling, where: tuple[str, int], future: asyncio.Future[Any]) -> None:
    error = future.exception() if not future.cancelled() else asyncio.CancelledError()
    metadata = future.result() if error is None else None
    if metadata is not None and filling.delivered is not None:  # None: sent without acks
        filling.delivered(where[0], where[1], metadata.offset + filling.records - 1)
    _settle(filling, error)


def _settle(filling: _Filling, error: BaseException | None) -> None:
    for awaiting in filling.waiting.values():
        awaiting.settle(error)
