"""The ingest's aiokafka producer: how one is made, how its errors are read, how it is dropped.

Errors come in three kinds, and each is handled differently:

- **refused record**: the broker (or the client's own size check) refused this record
  batch: too large, corrupt, invalid. Kafka itself is fine. The record is retried alone
  and, refused alone, quarantined; Kafka is never marked unavailable for it.
- **spent producer**: an idempotent producer whose batch was refused keeps a gap in its
  sequence numbers, and Kafka answers every later batch for that partition with
  OutOfOrderSequenceNumber. Such a producer is replaced, not waited on.
- anything else is an outage (no connection, no leader, no acknowledgement in time).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    CorruptRecordException,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTimestampError,
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownError,
    UnknownProducerId,
    UnsupportedForMessageFormatError,
)

from ingest._partitioner import StickyPartitioner

# UnknownError stands for broker error codes aiokafka does not name, among them
# INVALID_RECORD (87), which a broker returns for one record it will not take.
REFUSED_RECORD_ERRORS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
    UnsupportedForMessageFormatError,
    UnknownError,
)
SPENT_PRODUCER_ERRORS: tuple[type[KafkaError], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
    ProducerClosed,
)
REQUEST_TIMEOUT_MS = 30_000
CLOSE_TIMEOUT_S = 5.0


def refused_record(error: BaseException) -> bool:
    """True when `error` concerns the record (batch) sent, not Kafka."""
    return isinstance(error, REFUSED_RECORD_ERRORS)


def spent_producer(error: BaseException) -> bool:
    """True when `error` means this producer can send no more and must be replaced."""
    return isinstance(error, SPENT_PRODUCER_ERRORS)


def new_producer(client_options: dict[str, Any], *, linger_ms: int, max_batch_bytes: int,
                 max_request_bytes: int) -> AIOKafkaProducer:
    """An idempotent producer (acks=all) for `<prefix>.raw`, not started yet."""
    return AIOKafkaProducer(
        **client_options,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=max_batch_bytes,
        max_request_size=max_request_bytes,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        partitioner=StickyPartitioner(),
        client_id="qikflow-ingest",
    )


async def drop(producer: AIOKafkaProducer) -> None:
    """Close `producer` without delivering what it still holds (every body it holds is
    spooled, so nothing is lost).

    aiokafka's own stop() first waits for every queued batch, and an idempotent producer
    never gives up on one while the broker is away: stop() would wait for ever. So the
    batches are failed first (their futures then carry ProducerClosed, consumed by
    whoever sent them), the sender task is cancelled, and then the producer stops.
    """
    reason = ProducerClosed()
    accumulator = producer._message_accumulator
    for batches in list(accumulator._batches.values()):
        for batch in batches:
            if not batch.future.done():
                # A batch sent once and queued again after a retriable error has a done
                # callback that removes it from the in-flight set: put it there first.
                accumulator._pending_batches.add(batch)
                batch.drain_ready()  # resolves the drain waiter, which nobody awaits
                batch.failure(exception=reason)
    accumulator.fail_all(reason)
    sender_task = producer._sender.sender_task
    if sender_task is not None:
        sender_task.cancel()
    try:
        await asyncio.wait_for(producer.stop(), CLOSE_TIMEOUT_S)
    except (TimeoutError, KafkaError, OSError):
        # The connections close with the event loop at the latest; nothing is left to send.
        await _close_client(producer)


async def _close_client(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.client.close(), CLOSE_TIMEOUT_S)
    except (TimeoutError, KafkaConnectionError, OSError):
        return


async def answers_metadata(client_options: dict[str, Any], timeout_s: float) -> bool:
    """True when Kafka answers a metadata request on a connection of its own (a producer's
    connections may be the part that is broken)."""
    client = AIOKafkaClient(**client_options, client_id="qikflow-ingest",
                            request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()
    return True


def consume_result(future: asyncio.Future[object]) -> None:
    """Done-callback for a delivery nobody awaits any more (its request already spooled, or
    its drain round abandoned): retrieving the exception keeps asyncio from logging "Future
    exception was never retrieved"; the failure is counted where it was awaited."""
    if not future.cancelled():
        future.exception()
