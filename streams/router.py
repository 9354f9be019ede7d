"""Stage 1 of routing: parse `<prefix>.raw` and re-key every event for dedup.

The raw topic has no useful key (ingest never parses), so copies of one event can sit in
different raw partitions, read by different workers. This stage is stateless: it parses
each body and sends every event to the internal keyed topic, into the partition of
`Event.key`, which is the same for every copy of one event id, so stage 2 (`dedup.py`) sees
all copies of an id in one partition. The events of one batch bound for one partition
travel as one bundle record (`_keyed.py`). Bodies that are no event go straight to
`<prefix>.unknown` or `.dlq`.

Why this stage is not a Faust agent: Faust hands every consumed record to its agents
through two tasks and an `asyncio.wait` (`Consumer._drain_messages`), some 50 µs per
record, which was a third of the worker's time at one raw record per webhook. Stage 1
keeps no state, so it needs none of Faust's tables or recovery; it runs in the same worker
process, started and stopped with the Faust app, with its own aiokafka consumer (group
`<prefix>-router`) and idempotent producer, and commits by hand:

1. `getmany` up to `batch_size` raw records;
2. parse them and queue every output (bundles, unknown, dead letters) without waiting
   (`_router_outputs.py`): a
   record's events join bundles only once all of them are encoded and within the event
   budget (`budget.py`), so a record ends in exactly one outcome (its events, `unknown` or
   `dlq`), never in bundles and a dead letter both;
3. route the next batch, then wait for the previous batch's outputs: a record whose
   output the broker refused after the producer's retries is dead-lettered instead, and
   if even that fails the process exits before committing, so the record is read again;
4. commit the previous batch's offsets.

At most one batch is in flight, and a rebalance or a stop first settles and commits it, so
a graceful hand-over repeats nothing. A crash repeats at most two batches; the copies get
later positions in the keyed topic, and stage 2 drops them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, KafkaError
from mode import Service

from ingest.record import RawRecord
from streams import headers as names
from streams._keyed import BundleWriter, Entry, PartitionCache, encode_entry
from streams._router_outputs import Bundle, RouterBatch, RouterOutputs
from streams.budget import SETTING
from streams.errors import RecordTooLargeError
from streams.headers import Headers, context
from streams.parsers import Parsed, Undecodable, Unrecognised, parse_raw

if TYPE_CHECKING:
    from streams.context import StreamsApp
    from streams.events import Event
    from streams.notices import NoticeEvent

logger = logging.getLogger(__name__)


class RawRouter(Service):
    """Reads `<prefix>.raw`, routes each body, commits once its outputs are delivered."""

    def __init__(self, streams: StreamsApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._topics = streams.topics
        self._metrics = streams.metrics
        self._kafka = streams.kafka
        self._settings = streams.settings
        self._budget = streams.budget
        self._partition_for = PartitionCache(streams.kafka.topic_partitions)
        self._max_bundle_bytes = streams.settings.keyed_bundle_max_bytes
        self._max_event_bytes = streams.budget.event_value_bytes
        self.group_id = streams.topics.router_group
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._outputs: RouterOutputs | None = None
        self._in_flight: RouterBatch | None = None
        # Held while a batch is routed or settled; a rebalance waits for it.
        self._lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------

    async def on_start(self) -> None:
        settings, kafka = self._settings, self._kafka
        self._producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.producer_linger_ms,
            max_batch_size=settings.producer_max_batch_bytes,
            max_request_size=self._budget.router_request_bytes,
            **kafka.client_options(),
        )
        self._consumer = AIOKafkaConsumer(
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.session_timeout_s * 1000),
            heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
            max_partition_fetch_bytes=max(settings.consumer_max_fetch_bytes,
                                          self._budget.raw.batch_bytes),
            **kafka.client_options(),
        )
        await self._producer.start()
        self._outputs = RouterOutputs(self._producer, self._topics.dlq, self._metrics,
                                      self._budget.dead_letter_bytes)
        self._consumer.subscribe([self._topics.raw], listener=_HandOver(self))
        await self._consumer.start()
        logger.info("router reading %s as group %s", self._topics.raw, self.group_id)

    async def on_stop(self) -> None:
        # The loop has stopped (`should_stop`); settle and commit what it left in flight.
        async with self._lock:
            await self._settle_and_commit()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        logger.info("router stopped; every routed raw record is committed")

    @Service.task
    async def _run(self) -> None:
        try:
            await self._route_until_stopped()
        except Exception as exc:
            # A failure outside one record (the consumer or the commit): nothing of the
            # batch in flight is committed. Crashing stops the whole worker with status 1,
            # and its supervisor restarts it, which reads those records again.
            logger.critical("router failed: %s: %s; stopping the worker, uncommitted raw "
                            "records will be read again", type(exc).__name__, exc,
                            exc_info=exc)
            raise

    async def _route_until_stopped(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        timeout_ms = max(1, int(self._settings.batch_within_s * 1000))
        limit = self._settings.batch_size
        while not self.should_stop:
            try:
                fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=limit)
            except ConsumerStoppedError:
                return  # stopping: on_stop stopped the consumer
            async with self._lock:
                if self.should_stop:
                    return  # on_stop settles; the fetched records are read again later
                # A rebalance may have taken partitions since `getmany` returned.
                owned = consumer.assignment()
                fetched = {tp: records for tp, records in fetched.items()
                           if tp in owned and records}
                previous = self._in_flight
                self._in_flight = await self._route(fetched) if fetched else None
                if previous is not None:
                    await self._sender().settle(previous)
                    await self._commit(previous)

    def _sender(self) -> RouterOutputs:
        assert self._outputs is not None, "the router has not started"
        return self._outputs

    async def _settle_and_commit(self) -> None:
        batch, self._in_flight = self._in_flight, None
        if batch is not None:
            await self._sender().settle(batch)
            await self._commit(batch)

    # -- routing ------------------------------------------------------------

    async def _route(self, fetched: Mapping[TopicPartition, Sequence[ConsumerRecord]]
                     ) -> RouterBatch:
        """Queue the outputs of `fetched`; a failure dead-letters its record, not the batch."""
        batch = RouterBatch({tp: records[-1].offset + 1 for tp, records in fetched.items()})
        bundles: dict[int, Bundle] = {}
        records = [record for partition_records in fetched.values()
                   for record in partition_records]
        self._metrics.raw.inc(len(records))
        for record in records:
            try:
                await self._route_one(batch, record, bundles)
            except RecordTooLargeError as exc:
                logger.error("router: %s: %s; dead-lettering the raw record", context(record),
                             exc)
                await self._sender().dead_letter(batch, record, names.TOO_LARGE, str(exc))
            except Exception as exc:
                self._metrics.agent_failures.labels(agent=names.ROUTER).inc()
                logger.error("router failed on %s: %s: %s", context(record),
                             type(exc).__name__, exc, exc_info=exc)
                await self._sender().dead_letter(batch, record, names.FAILED,
                                                 f"{type(exc).__name__}: {exc}")
        for partition, bundle in bundles.items():
            await self._send_bundle(batch, partition, bundle)
        return batch

    async def _route_one(
        self, batch: RouterBatch, record: ConsumerRecord, bundles: dict[int, Bundle]
    ) -> None:
        headers: Headers = list(record.headers)
        outcome = parse_raw(RawRecord.from_kafka(record.value, headers))
        if isinstance(outcome, Parsed):
            # Every event is encoded before any joins a bundle: a failure leaves none behind.
            entries = [*(self._encode(event, headers) for event in outcome.events),
                       *(self._encode(notice, headers) for notice in outcome.notices)]
            for partition, entry in entries:
                bundle = bundles.get(partition)
                if bundle is not None and bundle.writer.size + entry.size > self._max_bundle_bytes:
                    await self._send_bundle(batch, partition, bundle)
                    bundle = None
                if bundle is None:
                    bundle = bundles[partition] = Bundle()
                bundle.writer.append(entry)
                bundle.records[id(record)] = record
        elif isinstance(outcome, Unrecognised):
            self._metrics.unknown.inc()
            reason = (names.REASON,
                      outcome.reason.encode("utf-8", "replace")[:names.MAX_ERROR_BYTES])
            await self._sender().send(batch, [record], self._topics.unknown, record.key,
                                      record.value, [*headers, reason])
        elif isinstance(outcome, Undecodable):
            await self._sender().dead_letter(batch, record, names.UNDECODABLE, outcome.error)

    def _encode(self, event: Event | NoticeEvent, headers: Headers) -> tuple[int, Entry]:
        """The keyed partition and bundle entry of one event; RecordTooLargeError when its
        JSON is beyond the event budget."""
        key = event.key
        value = event.to_json()
        if len(value) > self._max_event_bytes:
            raise RecordTooLargeError(
                f"event {event.event_id[:60]!r} ({event.type}) is {len(value)} bytes of JSON, "
                f"more than the {self._max_event_bytes} an event of a body of "
                f"{SETTING}={self._budget.max_body_bytes} may have"
            )
        return self._partition_for(key), encode_entry(event.event_id, event.type, key, value,
                                                      headers)

    async def _send_bundle(self, batch: RouterBatch, partition: int, bundle: Bundle) -> None:
        records = list(bundle.records.values())
        bundle.records.clear()  # sent (or failed) once, even if called again
        if records:
            await self._sender().send(batch, records, self._topics.keyed, None,
                                      bundle.writer.value(), [], partition)
            bundle.writer = BundleWriter()

    # -- commits --------------------------------------------------------------

    async def _commit(self, batch: RouterBatch) -> None:
        consumer = self._consumer
        assert consumer is not None
        owned = consumer.assignment()
        offsets = {tp: offset for tp, offset in batch.offsets.items() if tp in owned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on (a rebalance without us): the next owner reads these records
            # again and stage 2 drops the copies.
            logger.warning("router: could not commit %d partition(s) of %s (%r); their "
                           "records will be routed again and deduplicated",
                           len(offsets), self._topics.raw, exc)


class _HandOver(ConsumerRebalanceListener):  # type: ignore[misc]
    """Settle and commit the batch in flight before a rebalance hands partitions over."""

    def __init__(self, router: RawRouter) -> None:
        self._router = router

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._router._lock:
            await self._router._settle_and_commit()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        logger.info("router assigned %d partition(s) of %s", len(assigned),
                    self._router._topics.raw)
