"""Faust's consumer, but a seek "to the committed offset" also rewinds partitions that have none.

After every rebalance Faust drops the records it had fetched and not yet handed to an agent
(a fetch cut short by the rebalance, a stream buffer cleared), and relies on seeking each
partition back to its committed offset to read them again. aiokafka's `seek_to_committed`
moves only partitions whose committed offset is above 0: a partition this consumer group
has never committed keeps its read position, past the dropped records. Nothing reads
them again, and once a later record of the partition is committed they are lost for good.

This happens to a new prefix, or a worker's first minutes, when a second rebalance comes
before the first commit (a slow start, a topic created while the group joins): a fault
drill lost one event of its first second this way, on a loaded CI machine.

So a partition read by an agent (acks enabled: the keyed topic, the per-type topics) with
no committed offset is sought to its start, as `auto_offset_reset=earliest` would for a
new group. Records this process already handled are then read again, and every agent here
takes that (dedup skips or repeats them, `dedup.HandledOffsets`). Changelog partitions are
Faust's recovery's to place, and are left alone.

Until the fetcher has placed a partition sought this way, aiokafka knows no position for
it, and aiokafka 0.14 asserts when one is read. Faust's livelock check reads the position
of every partition it has fetched before: run in that window it crashed the consumer, and
the worker with it (a CI run, a rebalance a second after start). Such a partition is left
out of the check until it has a position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

logger = logging.getLogger(__name__)


async def seek_to_committed_or_start(
    consumer: AIOKafkaConsumer, rewinds: Callable[[str], bool],
) -> dict[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset, and each partition of a topic
    that `rewinds` with no committed offset (none, or 0) to its start; return the
    committed offsets, as `AIOKafkaConsumer.seek_to_committed` does."""
    committed: dict[TopicPartition, int | None] = await consumer.seek_to_committed()
    never = [tp for tp, offset in committed.items() if not offset and rewinds(tp.topic)]
    if never:
        logger.info("%d partition(s) this group never committed are read from their start: %s",
                    len(never), ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(never)))
        await consumer.seek_to_beginning(*never)
    return committed


def awaiting_position(consumer: AIOKafkaConsumer, tp: TP) -> bool:
    """Is `tp` assigned to `consumer` with no position yet (sought to its start, or new)?"""
    subscription = consumer._fetcher._subscriptions.subscription
    assignment = subscription.assignment if subscription is not None else None
    state = assignment.state_value(TopicPartition(tp.topic, tp.partition)) if assignment else None
    return state is not None and not state.has_valid_position


class RewindingConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        rewinds = self.app.topics.acks_enabled_for
        return await self.call_thread(  # type: ignore[no-any-return]
            seek_to_committed_or_start, self._ensure_consumer(), rewinds)

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock check, but not of a partition that has no position yet."""
        if awaiting_position(self._ensure_consumer(), tp):
            return None
        super().verify_event_path(now, tp)
        return None


class RewindingConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return RewindingConsumerThread(self, loop=self.loop, beacon=self.beacon)


class RewindingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, with the consumer above."""

    Consumer = RewindingConsumer
