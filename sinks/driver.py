"""The shared sink driver: batch, write with retries, dead-letter poison, then commit.

It runs one sink in one process and one consumer group (`<prefix>-sink-<name>`), with a
plain aiokafka consumer and manual commits, so offsets move only after the store has the
records:

1. collect up to `sink_batch_max_records`: while the consumer is behind, at most
   `sink_batch_within_ms` from the first record; once it has caught up, at once;
2. decode each record (an event's content by the model of its topic's type:
   `sinks/_decode.py`); one that does not decode goes to `<prefix>.sink.dlq` at once;
3. `sink.write(batch)`: a retriable SinkError (store down) retries the same batch with
   exponential backoff, forever, until it succeeds or the process is asked to stop;
   a non-retriable one splits the batch in halves until the poison record is alone,
   which goes to the dead-letter topic while the rest is written;
4. commit the next offset of every partition in the batch.

Steps 1 and 2 of the next batch run while the store writes the previous one; its write
starts once the previous write is done (one write at a time), while the previous commit may
still be on its way to Kafka; its commit follows the previous commit (commits keep their
order, and each comes after its own write).

A stop during a retry returns without committing: the next start re-reads the batch.
Faust was not used here because `Stream.take` acks its buffered events in a `finally`,
also when the agent is cancelled mid-write, and the consumer commits acked offsets on
shutdown: a stop while the store was down would skip records. See docs/sinks.md.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pydantic
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import ensure_topics
from qikflow.topics import Topics
from sinks import _topics
from sinks._decode import decoders
from sinks._metrics import SinkMetrics
from sinks.base import Sink, SinkError, SinkRecord, StoreUnavailableError
from sinks.settings import SinkSettings
from streams.headers import dead_letter_headers

logger = logging.getLogger(__name__)

IDLE_POLL_S = 1.0
MAINTAIN_EVERY_S = 1.0


class DriverStoppedError(Exception):
    """Asked to stop while a write was being retried; its records were not committed."""


@dataclass(frozen=True, slots=True)
class _Item:
    message: ConsumerRecord
    record: SinkRecord


@dataclass(frozen=True, slots=True)
class _InFlight:
    """The last batch handed to the store: its write, and its commit (which follows the
    commit of the batch before it)."""

    written: asyncio.Task[None]
    committed: asyncio.Task[None]


@dataclass(slots=True)
class _Batch:
    """Records collected together: those decoded, and those sent to the dead-letter topic
    (where, reason, error), logged in one line once the batch is committed."""

    messages: list[ConsumerRecord]
    items: list[_Item] = field(default_factory=list)
    dead_letters: list[tuple[str, str, str]] = field(default_factory=list)


class SinkDriver:
    """Runs one sink against the per-type topics until `stop` is set."""

    def __init__(
        self,
        sink: Sink,
        *,
        kafka: KafkaSettings,
        settings: SinkSettings,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.sink = sink
        self.kafka = kafka
        self.settings = settings
        self.stop = stop or asyncio.Event()
        self.metrics = SinkMetrics(sink.name)
        self._next_maintain_s = 0.0
        # Two prefixes on one cluster never share a group.
        self.group_id = Topics.from_settings(kafka).sink_group(sink.name)
        self.topics = _topics.input_topics(kafka)
        self.dlq = Topics.from_settings(kafka).sink_dlq
        self._producer: AIOKafkaProducer | None = None
        self._in_flight: _InFlight | None = None
        self._commits: set[asyncio.Task[None]] = set()  # those not yet done
        self._decoders = decoders(Topics.from_settings(kafka))

    async def run(self) -> None:
        """Consume, write and commit until stopped; close the sink on the way out."""
        await ensure_topics(self.kafka, _topics.sink_topics(self.kafka),
                            client_id=f"qikflow-sink-{self.sink.name}")
        consumer = AIOKafkaConsumer(
            *self.topics,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.sink_batch_max_records,
            max_poll_interval_ms=self.settings.sink_max_poll_interval_ms,
            **self.kafka.client_options(),
        )
        producer = AIOKafkaProducer(acks="all", enable_idempotence=True,
                                    **self.kafka.client_options())
        try:
            await self._retrying("setup", self.sink.setup, "")
            await producer.start()
            self._producer = producer
            await consumer.start()
            logger.info("%s sink consuming %d topics (%s...) as group %s", self.sink.name,
                        len(self.topics), self.topics[0], self.group_id)
            while not self.stop.is_set():
                messages = await self._collect(consumer)
                if messages:
                    # Decoded while the previous batch is still being written; written
                    # once that write is done, committed once its commit is.
                    batch = await self._decode(messages)
                    await self._written()
                    self._hand_over(consumer, batch)
                await self._maintain()
            await self._settle()
        except DriverStoppedError:
            logger.warning("%s sink stopped while retrying; the uncommitted records will be "
                           "read again on the next start", self.sink.name)
        finally:
            await self._abandon()
            await consumer.stop()
            await producer.stop()
            await self.sink.close()
            logger.info("%s sink stopped", self.sink.name)

    # -- batching ------------------------------------------------------------

    async def _collect(self, consumer: AIOKafkaConsumer) -> list[ConsumerRecord]:
        """Up to batch_max records. Once the first has arrived, it takes more while the
        consumer is behind (records already wait in the topic) and stops as soon as it has
        caught up, or `within` after the first at the latest: under load batches fill, and
        a record that arrives alone is written at once instead of waiting out `within`
        (that wait was most of a webhook's time from receipt to row)."""
        limit = self.settings.sink_batch_max_records
        within_s = self.settings.sink_batch_within_ms / 1000
        messages: list[ConsumerRecord] = []
        deadline: float | None = None
        while len(messages) < limit and not self.stop.is_set():
            # Idle, it waits at most IDLE_POLL_S, so that a stop or housekeeping is not held
            # up by a long `within`.
            remaining = (min(within_s, IDLE_POLL_S) if deadline is None
                         else deadline - time.monotonic())
            if remaining <= 0:
                break
            fetched = await consumer.getmany(
                timeout_ms=int(remaining * 1000), max_records=limit - len(messages)
            )
            for partition_messages in fetched.values():
                messages.extend(partition_messages)
            if deadline is None:
                if not messages:
                    return messages  # idle: let the caller run housekeeping
                deadline = time.monotonic() + within_s
            if await _caught_up(consumer):
                break
        return messages

    async def _decode(self, messages: list[ConsumerRecord]) -> _Batch:
        """Decode a batch; a record that does not decode goes to the dead-letter topic."""
        batch = _Batch(messages)
        decoders = self._decoders
        for message in messages:
            try:
                if message.value is None:
                    raise ValueError("record has no value (tombstone)")
                event = decoders[message.topic](message.value)
            except (pydantic.ValidationError, ValueError) as error:
                await self._dead_letter(batch, message, "decode",
                                        f"undecodable record: {error}")
                continue
            batch.items.append(_Item(message, SinkRecord(message.topic, message.partition,
                                                         message.offset, event)))
        return batch

    def _hand_over(self, consumer: AIOKafkaConsumer, batch: _Batch) -> None:
        """Start writing `batch`; its commit waits for its write and the previous commit."""
        before = self._in_flight.committed if self._in_flight is not None else None
        written = asyncio.create_task(self._write_batch(batch))
        committed = asyncio.create_task(self._commit_after(consumer, batch, written, before))
        self._commits.add(committed)
        committed.add_done_callback(self._commits.discard)
        self._in_flight = _InFlight(written, committed)

    async def _write_batch(self, batch: _Batch) -> None:
        if batch.items:
            await self._write(batch, batch.items)

    async def _commit_after(self, consumer: AIOKafkaConsumer, batch: _Batch,
                            written: asyncio.Task[None], before: asyncio.Task[None] | None
                            ) -> None:
        """Commit a batch once it is written and the batch before it is committed; nothing
        when either failed (the loop raises the write's error; the next start reads the
        batch again). Log its dead letters in one line."""
        started = time.monotonic()
        if before is not None:
            await asyncio.wait([before])
            if before.cancelled() or before.exception() is not None:
                return
        await asyncio.wait([written])
        if written.cancelled() or written.exception() is not None:
            return
        await self._commit(consumer, batch.messages)
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        if batch.dead_letters:
            first = batch.dead_letters[0]
            logger.error("%s sink: %d of %d record(s) sent to %s; the first, %s (%s): %s",
                         self.sink.name, len(batch.dead_letters), len(batch.messages),
                         self.dlq, *first)

    async def _written(self) -> None:
        """Wait until the last batch is written; raise what its write raised (then it is
        no longer in flight: `_abandon` only cancels its commit)."""
        in_flight = self._in_flight
        if in_flight is None:
            return
        try:
            await in_flight.written
        except Exception:
            self._in_flight = None
            raise

    async def _settle(self) -> None:
        """Wait until the last batch is written and committed (and so every batch before
        it); raise what its write raised."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await in_flight.written
            await in_flight.committed

    async def _abandon(self) -> None:
        """On the way out after an error or a cancellation: cancel the batch in flight (it
        may be retrying against a store that is down, and nothing would end that) and its
        commit before the consumer closes; its records are not committed, the next start
        reads them again. Commits still on their way are cancelled too (Kafka may be the
        reason the driver stops). Log what the write raised."""
        in_flight, self._in_flight = self._in_flight, None
        commits = list(self._commits)
        for task in commits:
            task.cancel()
        if commits:
            await asyncio.wait(commits)
        if in_flight is None:
            return
        in_flight.written.cancel()
        await asyncio.wait([in_flight.written])
        error = None if in_flight.written.cancelled() else in_flight.written.exception()
        if error is not None and not isinstance(error, DriverStoppedError):
            logger.error("%s sink: the batch in flight failed as the sink stopped: %r",
                         self.sink.name, error)

    async def _write(self, batch: _Batch, items: list[_Item], *, split: bool = False) -> None:
        """Write with retries; on a poison error split the batch to isolate the record."""
        records = [item.record for item in items]
        try:
            await self._retrying("write", lambda: self.sink.write(records), _describe(records))
        except SinkError as error:
            if len(items) == 1:
                await self._dead_letter(batch, items[0].message, "write", str(error))
                return
            if not split:
                logger.warning("%s sink: %s failed (%s); splitting it to isolate the bad "
                               "records, the rest is written", self.sink.name,
                               _describe(records), error)
            middle = len(items) // 2
            await self._write(batch, items[:middle], split=True)
            await self._write(batch, items[middle:], split=True)
            return
        self.metrics.written.inc(len(records))

    # -- retries, dead letters, commits -------------------------------------

    async def _retrying(self, what: str, action: Callable[[], Awaitable[None]],
                        context: str) -> None:
        """Run `action` until it succeeds; retriable SinkErrors back off exponentially."""
        attempt = 0
        while True:
            try:
                await action()
                if attempt:
                    logger.info("%s sink: %s %s succeeded after %d retries", self.sink.name,
                                what, context, attempt)
                return
            except SinkError as error:
                if not error.retriable:
                    raise
                attempt += 1
                delay_s = self._backoff_s(attempt)
                self.metrics.retries.inc()
                logger.warning("%s sink: %s %s failed (attempt %d): %s; nothing committed, "
                               "retrying in %.1fs", self.sink.name, what, context, attempt,
                               error, delay_s)
            try:
                await asyncio.wait_for(self.stop.wait(), delay_s)
            except TimeoutError:
                continue
            raise DriverStoppedError(f"stopped while retrying {what} {context}")

    def _backoff_s(self, attempt: int) -> float:
        initial_s = self.settings.sink_retry_initial_ms / 1000
        ceiling_s = self.settings.sink_retry_max_ms / 1000
        # Jitter keeps several sinks from hammering a recovering store in step.
        delay_s: float = min(ceiling_s, initial_s * 2 ** (attempt - 1))
        return delay_s * random.uniform(0.8, 1.2)

    async def _dead_letter(self, batch: _Batch, message: ConsumerRecord, reason: str,
                           error: str) -> None:
        producer = self._producer
        assert producer is not None, "the producer starts before the first batch"
        headers = dead_letter_headers(message.headers or (), message, reason=reason, error=error,
                                      sink=self.sink.name)

        async def send() -> None:
            try:
                await producer.send_and_wait(self.dlq, message.value, key=message.key,
                                             headers=headers)
            except KafkaError as kafka_error:
                raise StoreUnavailableError(f"dead-letter topic {self.dlq}: {kafka_error}") \
                    from kafka_error

        await self._retrying("dead-letter", send,
                             f"{message.topic}[{message.partition}]@{message.offset}")
        self.metrics.dead_letter(reason)
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        batch.dead_letters.append((where, reason, error))
        logger.debug("%s sink: %s sent to %s (%s): %s", self.sink.name, where, self.dlq,
                     reason, error)

    async def _commit(self, consumer: AIOKafkaConsumer, messages: list[ConsumerRecord]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for message in messages:
            partition = TopicPartition(message.topic, message.partition)
            offsets[partition] = max(offsets.get(partition, 0), message.offset + 1)
        assigned = consumer.assignment()
        owned = {partition: offset for partition, offset in offsets.items()
                 if partition in assigned}
        try:
            if owned:
                await consumer.commit(owned)
        except KafkaError as error:
            # After a rebalance the new owner re-reads from the last commit: the records
            # are written twice, which the idempotent writes absorb.
            self.metrics.commit_failures.inc()
            logger.warning("%s sink: commit of %d partitions refused (%s); those records will "
                           "be written again by their new owner", self.sink.name, len(owned),
                           error)

    async def _maintain(self) -> None:
        """The sink's housekeeping, at most once every MAINTAIN_EVERY_S: batches come as
        often as records do once the consumer has caught up, and the lake's check of what
        to roll is a query over everything staged."""
        now = time.monotonic()
        if now < self._next_maintain_s:
            return
        self._next_maintain_s = now + MAINTAIN_EVERY_S
        await self._settle()  # between batches, as the contract says
        try:
            await self.sink.maintain()
        except SinkError as error:
            logger.warning("%s sink: housekeeping failed, will try again: %s",
                           self.sink.name, error)


def _describe(records: list[SinkRecord]) -> str:
    """`batch of 312 (t.status.read[0]@120..., ...)`: enough to find the records again."""
    first = [f"{r.topic}[{r.partition}]@{r.offset}" for r in records[:3]]
    more = ", ..." if len(records) > 3 else ""
    return f"batch of {len(records)} ({', '.join(first)}{more})"


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    """Has the consumer returned every record of its partitions, as far as the broker's
    last answers say (position at the high watermark)?"""
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is not None and await consumer.position(tp) < highwater:
            return False
    return True
