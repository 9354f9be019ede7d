"""The router's outputs in flight: one batch's queued sends, and how they settle.

A batch of raw records becomes outputs queued on the producer without waiting (bundles for
the keyed topic, `unknown` records, dead letters). Settling waits for all of them; a record
whose output the broker refused after the producer's retries is dead-lettered instead, and
if even that fails the process exits before committing, so the record is read again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from streams import headers as names
from streams._keyed import BundleWriter
from streams._metrics import StreamsMetrics
from streams.dead_letters import dead_letter
from streams.headers import Headers
from streams.undeliverable import exit_undeliverable

logger = logging.getLogger("streams.router")


@dataclass(slots=True)
class RouterBatch:
    """The outputs of one batch of raw records, in flight until settled."""

    # The offset to commit per partition once the batch is settled.
    offsets: dict[TopicPartition, int]
    # Output futures and, for each, the records whose outputs they are (a bundle serves many).
    outputs: list[tuple[asyncio.Future[Any], list[ConsumerRecord]]] = field(default_factory=list)


class Bundle:
    """Events of one batch bound for one keyed partition, and the records they came from."""

    __slots__ = ("records", "writer")

    def __init__(self) -> None:
        self.writer = BundleWriter()
        self.records: dict[int, ConsumerRecord] = {}  # by id(): a record may add several events


class RouterOutputs:
    """Queues the router's outputs on its producer and settles a batch of them."""

    def __init__(self, producer: AIOKafkaProducer, dlq_topic: str, metrics: StreamsMetrics,
                 dead_letter_bytes: int) -> None:
        self._producer = producer
        self._dlq = dlq_topic
        self._metrics = metrics
        self._dead_letter_bytes = dead_letter_bytes

    async def send(self, batch: RouterBatch, records: list[ConsumerRecord], topic: str,
                   key: bytes | None, value: bytes | None, headers: Headers,
                   partition: int | None = None) -> None:
        """Queue one output of `records`; one the producer refuses to queue is a failed
        output like one the broker refuses, and `settle` dead-letters its records."""
        try:
            future = await self._producer.send(topic, value, key=key, partition=partition,
                                               headers=headers)
        except KafkaError as exc:
            future = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
        batch.outputs.append((future, records))

    async def dead_letter(self, batch: RouterBatch, record: ConsumerRecord, reason: str,
                          error: str) -> None:
        """Queue the raw record's dead letter: whole, or a preview when it is larger than
        the dead-letter topic takes (`dead_letters.py`)."""
        self._metrics.dead_lettered.labels(agent=names.ROUTER).inc()
        letter = dead_letter(record.key, record.value, record.headers, record, reason=reason,
                             error=error, agent=names.ROUTER,
                             limit_bytes=self._dead_letter_bytes)
        if letter.truncated:
            self._metrics.truncated.labels(agent=names.ROUTER).inc()
        await self.send(batch, [record], self._dlq, letter.key, letter.value, letter.headers)

    async def settle(self, batch: RouterBatch) -> None:
        """Wait for every output of `batch`; dead-letter the records of those that failed."""
        if not batch.outputs:
            return
        await asyncio.wait([future for future, _ in batch.outputs])
        failed: dict[int, tuple[ConsumerRecord, BaseException]] = {}
        for future, records in batch.outputs:
            error = future.exception()
            if error is not None:
                for record in records:
                    failed.setdefault(id(record), (record, error))
        if not failed:
            return
        logger.error("router: outputs of %d raw record(s) were not delivered (%r); "
                     "dead-lettering them", len(failed), next(iter(failed.values()))[1])
        retry = RouterBatch({})
        for record, error in failed.values():
            await self.dead_letter(retry, record, names.UNDELIVERABLE,
                                   f"{type(error).__name__}: {error}")
        await asyncio.wait([future for future, _ in retry.outputs])
        for future, records in retry.outputs:
            error = future.exception()
            if error is not None:
                exit_undeliverable(names.ROUTER, records[0], self._dlq, error)
