"""Sending from agents without waiting: a consumed record is acked only once every record
sent for it is delivered (or, failing that, dead-lettered).

Faust commits the offset of an acked event after flushing the producer, but a record the
broker refused after the producer's retries would still be committed, and lost. Waiting for
delivery after each batch is correct but ties throughput to the broker's round trip. So
each consumed record carries one extra Faust reference (`Message.incref`, the mechanism
Faust uses when several streams read one record) while its outputs are in flight; the last
delivery callback releases it, and only then can Faust commit the offset. An output that
was not delivered sends its source record to `<prefix>.dlq` with the error first (undoing
first what handling it changed, such as dedup's table entry: `Delivery.undo`); if even that
fails the process exits at once, before Faust can commit, so the record is read again
(`undeliverable.py`). A dead letter always fits the dead-letter topic (`dead_letters.py`).

An agent sends each record (`send`) or, in a hot loop, queues it (`queue`) into its
partition's producer batch and sends them all at the end of its batch (`flush`): one future
per producer batch instead of one per record (`_producer_batches.py`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, cast

from aiokafka.errors import MessageSizeTooLargeError

from streams import headers as names
from streams._producer_batches import Delivered, ProducerBatches
from streams.dead_letters import dead_letter
from streams.headers import Headers, context, header, headers_of
from streams.undeliverable import exit_undeliverable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from faust.transport.drivers import aiokafka as faust_aiokafka
    from faust.types import Message

    from streams.context import StreamsApp

logger = logging.getLogger(__name__)


def _delivered_alone(delivered: Delivered, future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None and future.result() is not None:
        metadata = future.result()
        delivered(metadata.topic, metadata.partition, metadata.offset)


class Original(NamedTuple):
    """The record a failure dead-letters when it is not the consumed record itself (one
    event of a keyed bundle): its key, value and headers."""

    key: bytes | None
    value: bytes | None
    headers: Headers


class Delivery:
    """The outputs of one consumed record, or of one event in it; holds a Faust reference on
    the record until they are delivered."""

    __slots__ = ("_closed", "_errors", "_output", "_pending", "_retried", "original", "source",
                 "undo")

    def __init__(self, output: Output, source: Message, original: Original | None = None) -> None:
        self._output = output
        self.source = source
        self.original = original
        self._pending = 0
        self._closed = False
        self._errors: list[BaseException] = []
        self._retried = False
        # What to undo before the record is dead-lettered (dedup forgets the event id).
        self.undo: Callable[[], Awaitable[None]] | None = None
        source.incref()

    def add(self, future: asyncio.Future[Any], *, dead_letter: bool) -> None:
        self._pending += 1
        if dead_letter:
            future.add_done_callback(self._dead_letter_done)
        else:
            future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[Any]) -> None:
        self.settle(future.exception() if not future.cancelled() else asyncio.CancelledError())

    def expect(self) -> None:
        """A producer batch holding an output of this record was sent (`_producer_batches`)."""
        self._pending += 1

    def settle(self, error: BaseException | None) -> None:
        """An output of this record was delivered, or failed with `error`."""
        self._pending -= 1
        if error is not None:
            self._errors.append(error)
        self._maybe_release()

    def _dead_letter_done(self, future: asyncio.Future[Any]) -> None:
        self._pending -= 1
        error = future.exception() if not future.cancelled() else asyncio.CancelledError()
        if error is not None:
            self._output.give_up(self.source, error)
        self._maybe_release()

    def close(self) -> None:
        """Every output of the record is queued; release it once they are delivered."""
        self._closed = True
        self._maybe_release()

    def _maybe_release(self) -> None:
        if not self._closed or self._pending:
            return
        if self._errors and not self._retried:
            self._retried = True
            asyncio.ensure_future(self._output.redirect(self, self._errors))
            return
        self.source.ack(self._output.consumer)

    async def undo_changes(self) -> None:
        """Undo what handling the record changed, once; a failure is logged, not raised:
        the record is dead-lettered all the same."""
        undo, self.undo = self.undo, None
        if undo is None:
            return
        try:
            await undo()
        except Exception as exc:  # noqa: BLE001 - the dead letter must still go out
            logger.error("could not undo the changes made for %s before dead-lettering it: "
                         "%s: %s", context(self.source), type(exc).__name__, exc)

    def dead_letter_record(self) -> Original:
        """What a failure sends to the dead-letter topic: the event, or the whole record."""
        if self.original is not None:
            return self.original
        source = self.source
        return Original(source.key, source.value, headers_of(source))


class Output:
    """What one agent sends; see the module doc for when its source records are acked."""

    def __init__(self, streams: StreamsApp, agent: str) -> None:
        self._app = streams.app
        self._dlq = streams.topics.dlq
        self._dlq_limit = streams.budget.dead_letter_bytes
        self._metrics = streams.metrics
        self._aiokafka: Any = None
        self._batches = ProducerBatches()
        # A record larger than this is sent alone: a batch the broker refuses fails every
        # record in it, and only a large one can be refused for its size.
        self._alone_bytes = streams.settings.producer_max_batch_bytes // 4
        self.agent = agent

    @property
    def consumer(self) -> Any:
        return self._app.consumer

    def _start_aiokafka(self) -> Any:
        producer = cast("faust_aiokafka.Producer", self._app.producer)
        self._aiokafka = producer._ensure_producer()
        return self._aiokafka

    def start(self, source: Message, original: Original | None = None) -> Delivery:
        """Begin handling `source` (or the event `original` in it); call `close()` on the
        result once all is sent."""
        return Delivery(self, source, original)

    async def send(
        self,
        delivery: Delivery,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one record made from `delivery.source`; it is acked only once delivered.

        Sent through the aiokafka producer under Faust's (the one Faust flushes before each
        commit) without Faust's wrapper, which converts headers and fires a hook per record:
        6 % of the worker's time in a profile, for nothing these records need."""
        producer = self._aiokafka or self._start_aiokafka()
        if partition is None and key is not None:
            partition = await self._batches.partition(producer, topic, key)
        if partition is not None and self._batches.holds(topic, partition):
            await self._batches.send((topic, partition), producer)  # keep the order
        sent = await producer.send(topic, value, key=key, partition=partition, headers=headers)
        future = cast("asyncio.Future[Any]", sent)
        delivery.add(future, dead_letter=False)
        return future

    async def queue(self, delivery: Delivery, topic: str, key: bytes | None,
                    value: bytes | None, headers: Headers, partition: int | None = None,
                    delivered: Delivered | None = None) -> None:
        """Queue one record made from `delivery.source` into its partition's producer batch,
        sent by `flush()` (`_producer_batches.py`); `delivered` is told the offset of the
        batch's last record once the broker has it. Ack as for `send()`."""
        size = len(key or b"") + len(value or b"")
        if size > self._alone_bytes or (partition is None and key is None):
            future = await self.send(delivery, topic, key, value, headers, partition)
            if delivered is not None:
                future.add_done_callback(functools.partial(_delivered_alone, delivered))
            return
        producer = self._aiokafka or self._start_aiokafka()
        if partition is None:
            assert key is not None  # a record without key or partition is sent alone
            partition = await self._batches.partition(producer, topic, key)
        await self._batches.queue(producer, delivery, topic, partition, key, value, headers,
                                  delivered)

    async def flush(self) -> None:
        """Send every queued record (before the deliveries of the batch are closed)."""
        if self._aiokafka is not None:
            await self._batches.send_all(self._aiokafka)

    async def dead_letter(self, delivery: Delivery, reason: str, error: str) -> None:
        """Queue the source record (or event) for `<prefix>.dlq`: its bytes and headers (or
        a preview, see `dead_letters.py`), why and where. When the producer refuses even to
        queue it, the process exits (`give_up`)."""
        source = delivery.source
        record = delivery.dead_letter_record()
        letter = dead_letter(record.key, record.value, record.headers, source, reason=reason,
                             error=error, agent=self.agent, limit_bytes=self._dlq_limit)
        self._metrics.dead_lettered.labels(agent=self.agent).inc()
        if letter.truncated:
            self._metrics.truncated.labels(agent=self.agent).inc()
        try:
            sent = await self._app.producer.send(
                self._dlq, letter.key, letter.value, None, None, letter.headers
            )
        except Exception as exc:  # noqa: BLE001 - whatever it is, the record cannot be kept
            self.give_up(source, exc)
        delivery.add(cast("asyncio.Future[Any]", sent), dead_letter=True)

    async def fail(self, delivery: Delivery, exc: BaseException) -> None:
        """An exception while handling a record: log it with context and dead-letter it."""
        source = delivery.source
        self._metrics.agent_failures.labels(agent=self.agent).inc()
        too_large = isinstance(exc, MessageSizeTooLargeError)
        logger.error(
            "agent %s failed on %s (event %s): %s: %s",
            self.agent,
            context(source),
            header(delivery.dead_letter_record().headers, names.EVENT_ID) or "-",
            type(exc).__name__,
            exc,
            exc_info=None if too_large else exc,
        )
        await delivery.undo_changes()
        await self.dead_letter(delivery, names.TOO_LARGE if too_large else names.FAILED,
                               f"{type(exc).__name__}: {exc}")

    async def redirect(self, delivery: Delivery, errors: list[BaseException]) -> None:
        """Outputs of a record were not delivered: dead-letter the record instead."""
        error = errors[0]
        logger.error(
            "agent %s could not deliver %d record(s) made from %s: %r",
            self.agent,
            len(errors),
            context(delivery.source),
            error,
        )
        await delivery.undo_changes()
        await self.dead_letter(delivery, names.UNDELIVERABLE, f"{type(error).__name__}: {error}")
        delivery.close()

    def give_up(self, source: Message, error: BaseException) -> NoReturn:
        exit_undeliverable(self.agent, source, self._dlq, error)
