"""Kafka clients for the operator actions, and reading offset ranges without a consumer group.

Every read seeks: a range starts at an offset (from a cursor, a time via offsets-for-times,
or the log start) and ends at an offset taken when the read began, so a topic is read a
batch at a time and never loaded whole, and records written meanwhile (by the action
itself, say) are not read. A client that cannot reach Kafka is a KafkaUnavailableError.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from ingest._producer import drop
from qikflow.config import KafkaSettings
from qikflow.operations.errors import KafkaUnavailableError

CLIENT_ID = "qikflow-operator"
REQUEST_TIMEOUT_MS = 10_000
# A read that gets no record for this long while records are still due stops with an error.
READ_STALL_S = 15.0
FETCH_RECORDS = 500


def unavailable(kafka: KafkaSettings, error: BaseException, kept: str) -> KafkaUnavailableError:
    """Kafka's failure as one sentence: who, what it answered, and what was kept."""
    return KafkaUnavailableError(
        f"Kafka at {kafka.bootstrap} did not answer ({type(error).__name__}: {error}); {kept}"
    )


@asynccontextmanager
async def _running(kafka: KafkaSettings, client: Any, kept: str,
                   close: Callable[[], Awaitable[None]] | None = None) -> AsyncIterator[Any]:
    """`client` started, and closed when done (by `close`, else its own stop); Kafka's
    failures as KafkaUnavailableError."""
    stop = close or (client.close if isinstance(client, AIOKafkaAdminClient) else client.stop)
    try:
        await client.start()
    except (KafkaError, OSError) as error:
        await stop()
        raise unavailable(kafka, error, kept) from error
    try:
        yield client
    except (KafkaError, OSError) as error:
        raise unavailable(kafka, error, kept) from error
    finally:
        await _stopped(stop)


async def _stopped(stop: Any) -> None:
    """Stop a client. aiokafka's consumer, stopped before its background task first ran,
    raises that task's CancelledError; unless this task itself is being cancelled, that
    is not ours to pass on."""
    try:
        await stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


def reader(kafka: KafkaSettings, *, kept: str = "nothing was changed",
           max_fetch_bytes: int = 1024 * 1024) -> AbstractAsyncContextManager[AIOKafkaConsumer]:
    """A consumer without a group (it never moves anyone's offsets)."""
    return _running(kafka, AIOKafkaConsumer(
        **kafka.client_options(), client_id=CLIENT_ID, enable_auto_commit=False,
        request_timeout_ms=REQUEST_TIMEOUT_MS, max_partition_fetch_bytes=max_fetch_bytes,
    ), kept)


def writer(kafka: KafkaSettings, *, kept: str) -> AbstractAsyncContextManager[AIOKafkaProducer]:
    """A producer that waits for every replica (acks=all). Callers wait for what they send.

    Not idempotent: an idempotent producer whose batch Kafka refused (a record too large)
    keeps a gap in its sequence numbers, and Kafka answers its later batches with
    OutOfOrderSequenceNumber; a re-drive sends such records again alone. The copy a retry
    may write is harmless (dedup and the idempotent sinks drop it). At the end the producer
    is dropped (the ingest's way), so a batch the broker, gone away, never acknowledges
    does not hold up the stop."""
    producer = AIOKafkaProducer(
        **kafka.client_options(), client_id=CLIENT_ID, acks="all", enable_idempotence=False,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    return _running(kafka, producer, kept, close=lambda: drop(producer))


def admin(kafka: KafkaSettings, *, kept: str = "nothing was changed"
          ) -> AbstractAsyncContextManager[AIOKafkaAdminClient]:
    return _running(kafka, AIOKafkaAdminClient(
        **kafka.client_options(), client_id=CLIENT_ID, request_timeout_ms=REQUEST_TIMEOUT_MS,
    ), kept)


async def partitions(consumer: AIOKafkaConsumer, *topics: str) -> list[TopicPartition]:
    """The partitions of `topics` (none for a topic that does not exist), asked of the
    brokers now: the consumer's own metadata knows only the topics it has read."""
    client = consumer._client
    cluster = await client.fetch_all_metadata()
    found = [TopicPartition(topic, p) for topic in topics
             for p in sorted(cluster.partitions_for_topic(topic) or ())]
    # Track them, so that offset lookups find their leaders at once instead of learning
    # one topic per metadata round (100 ms each).
    await client.set_topics(client._topics | {tp.topic for tp in found})
    return found


async def offsets_at(consumer: AIOKafkaConsumer, tps: list[TopicPartition], moment_ms: int
                     ) -> dict[TopicPartition, int]:
    """Per partition, the first offset whose timestamp is at or after `moment_ms` (the end
    offset where there is none)."""
    if not tps:
        return {}
    found = await consumer.offsets_for_times({tp: max(0, moment_ms) for tp in tps})
    missing = [tp for tp in tps if found.get(tp) is None]
    ends = await consumer.end_offsets(missing) if missing else {}
    return {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in tps}


async def bounds(consumer: AIOKafkaConsumer, tps: list[TopicPartition]
                 ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """First and end offsets of each partition."""
    if not tps:
        return {}, {}
    starts: dict[TopicPartition, int] = await consumer.beginning_offsets(tps)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    return starts, ends


class RangeReader:
    """Reads each partition from a start offset up to (not including) a stop offset.

    `batches()` yields what arrived, per partition, in offset order; `finish(tp)` ends one
    partition early. `position(tp)` is the next offset not yet handed out.
    """

    def __init__(self, consumer: AIOKafkaConsumer, ranges: dict[TopicPartition, tuple[int, int]],
                 *, fetch_records: int = FETCH_RECORDS, stall_s: float = READ_STALL_S) -> None:
        self._consumer = consumer
        self._stops = {tp: stop for tp, (start, stop) in ranges.items()}
        self._positions = {tp: start for tp, (start, stop) in ranges.items()}
        self._open = {tp for tp, (start, stop) in ranges.items() if start < stop}
        self._fetch_records = fetch_records
        self._stall_s = stall_s
        consumer.assign(list(ranges))
        for tp in ranges:
            consumer.seek(tp, ranges[tp][0])

    def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    @property
    def done(self) -> bool:
        return not self._open

    def finish(self, tp: TopicPartition) -> None:
        """Read no more of `tp`."""
        self._open.discard(tp)
        self._consumer.pause(tp)

    async def batches(self) -> AsyncIterator[dict[TopicPartition, list[ConsumerRecord]]]:
        consumer = self._consumer
        consumer.pause(*[tp for tp in self._stops if tp not in self._open])
        last_progress = time.monotonic()
        while self._open:
            fetched: dict[TopicPartition, list[ConsumerRecord]] = await consumer.getmany(
                *self._open, timeout_ms=500, max_records=self._fetch_records)
            batch: dict[TopicPartition, list[ConsumerRecord]] = {}
            for tp, records in fetched.items():
                if tp not in self._open:
                    continue
                stop = self._stops[tp]
                kept = [record for record in records if record.offset < stop]
                if kept:
                    batch[tp] = kept
                    self._positions[tp] = kept[-1].offset + 1
                    last_progress = time.monotonic()
            for tp in list(self._open):
                # Compaction and transaction markers leave gaps: ask where the fetch is.
                if self._positions[tp] >= self._stops[tp] or (
                        await consumer.position(tp)) >= self._stops[tp]:
                    self._positions[tp] = max(self._positions[tp], self._stops[tp])
                    self.finish(tp)
            if batch:
                yield batch
            elif self._open and time.monotonic() - last_progress > self._stall_s:
                waiting = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(self._open))
                raise KafkaError(f"no record arrived for {self._stall_s:.0f}s from {waiting}")
            await asyncio.sleep(0)


def record_time(record: Any) -> int:
    """A consumed record's timestamp in epoch ms (0 when the broker has none)."""
    timestamp = record.timestamp
    return int(timestamp) if timestamp and timestamp > 0 else 0
