"""RawPublisher: stores each body in Kafka within the ack budget, or else in the spool.

Kafka is tried first with an idempotent producer (acks=all). When it does not acknowledge
within QIKFLOW_ACK_TIMEOUT_MS, or cannot be reached, the publisher marks Kafka unavailable
and sends requests straight to the spool until the drainer sees Kafka accept writes again,
so an outage costs each request one spool fsync rather than the whole ack budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Literal

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingest._partitioner import StickyPartitioner
from ingest.metrics import IngestMetrics
from ingest.record import RawRecord
from ingest.settings import IngestSettings
from ingest.spool import Spool
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import TopicCreationError, ensure_topics, specs_for
from qikflow.topics import Topics

logger = logging.getLogger(__name__)

StoredIn = Literal["kafka", "spool"]
CONNECT_BACKOFF_MAX_S = 5.0
STARTUP_CONNECT_WAIT_S = 5.0


class RawPublisher:
    """Owns the Kafka producer of one ingest process and the choice Kafka-or-spool."""

    def __init__(
        self,
        settings: IngestSettings,
        kafka: KafkaSettings,
        spool: Spool,
        metrics: IngestMetrics,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.spool = spool
        self.metrics = metrics
        self.topic = Topics.from_settings(kafka).raw
        self._ack_timeout_s = settings.ack_timeout_ms / 1000
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._available = False
        metrics.kafka_available.set(0)
        # Bound once: label lookups cost more than the increments on the hot path.
        self._stored_in_kafka = metrics.stored.labels("kafka")
        self._stored_in_spool = metrics.stored.labels("spool")
        self._produce_seconds = metrics.produce_seconds

    # -- lifecycle ---------------------------------------------------------

    async def start(self, wait_s: float = STARTUP_CONNECT_WAIT_S) -> None:
        """Connect to Kafka, waiting up to `wait_s`; past that, go on connecting in the
        background while the ingest serves into the spool."""
        self._connector = asyncio.create_task(self._connect(), name="kafka-connect")
        done, _ = await asyncio.wait((self._connector,), timeout=wait_s)
        if not done:
            logger.warning("Kafka at %s not reachable within %.0fs of start; serving into the "
                           "spool %s meanwhile", self.kafka.bootstrap, wait_s, self.spool.path)

    async def stop(self) -> None:
        """Flush what the producer holds, then close it. Unsent bodies are already spooled."""
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.flush(), 10)
            except (TimeoutError, KafkaError) as error:
                logger.warning("producer flush at shutdown failed (%r); bodies are spooled", error)
            await self._producer.stop()

    @property
    def available(self) -> bool:
        return self._available and self._producer is not None

    def mark_available(self, available: bool, reason: str = "") -> None:
        if available == self._available:
            return
        self._available = available
        self.metrics.kafka_available.set(1 if available else 0)
        if available:
            logger.info("Kafka at %s acknowledges writes; requests go to Kafka",
                        self.kafka.bootstrap)
        else:
            logger.warning(
                "Kafka at %s unavailable (%s); new bodies go to the spool %s until it recovers",
                self.kafka.bootstrap, reason, self.spool.path,
            )

    async def _connect(self) -> None:
        delay = 0.25
        while True:
            producer = AIOKafkaProducer(
                **self.kafka.client_options(),
                enable_idempotence=True,
                acks="all",
                linger_ms=self.settings.producer_linger_ms,
                max_batch_size=self.settings.producer_max_batch_bytes,
                max_request_size=max(self.settings.max_body_bytes * 2, 1024 * 1024),
                request_timeout_ms=30000,
                partitioner=StickyPartitioner(),
                client_id="qikflow-ingest",
            )
            try:
                await producer.start()
                await self._ensure_topic()
            except (KafkaError, OSError, TopicCreationError) as error:
                await producer.stop()
                logger.warning("cannot reach Kafka at %s (%r); retrying in %.1fs",
                               self.kafka.bootstrap, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, CONNECT_BACKOFF_MAX_S)
                continue
            self._producer = producer
            self.mark_available(True)
            return

    async def _ensure_topic(self) -> None:
        await ensure_topics(self.kafka, specs_for(self.kafka, [self.topic]),
                            client_id="qikflow-ingest")

    # -- publishing --------------------------------------------------------

    async def publish(self, record: RawRecord) -> StoredIn:
        """Store `record` durably; raises SpoolError only when it was stored nowhere."""
        if self.available:
            try:
                await self.send(record, self._ack_timeout_s)
                self._stored_in_kafka.inc()
                return "kafka"
            except TimeoutError:
                self.metrics.kafka_failures.labels("ack_timeout").inc()
                self.mark_available(False, f"no ack within {self.settings.ack_timeout_ms} ms")
            except KafkaError as error:
                self.metrics.kafka_failures.labels(type(error).__name__).inc()
                self.mark_available(False, repr(error))
        await self.spool.put(record)
        self.metrics.spooled.inc()
        self._stored_in_spool.inc()
        self.metrics.spool_depth.inc()
        self.metrics.spool_bytes.inc(len(record.body))
        return "spool"

    async def send(self, record: RawRecord, timeout_s: float) -> None:
        """Produce one record; return once Kafka acknowledged it within `timeout_s`.

        Raises TimeoutError or KafkaError when it was not acknowledged in time.
        """
        producer = self._producer
        if producer is None:
            raise KafkaError("producer not connected")
        started = time.perf_counter()
        async with asyncio.timeout(timeout_s):
            delivery = await producer.send(self.topic, record.body, headers=record.headers())
        # Waited on, never cancelled: a delivery that outlives its request may still succeed
        # (the body is then in Kafka and in the spool; the receipt id marks the copy).
        remaining_s = max(0.0, timeout_s - (time.perf_counter() - started))
        await asyncio.wait((delivery,), timeout=remaining_s)
        if not delivery.done():
            delivery.add_done_callback(_consume_result)
            raise TimeoutError
        delivery.result()
        self._produce_seconds.observe(time.perf_counter() - started)

    @property
    def connected(self) -> bool:
        """True once a producer started (Kafka may still be marked unavailable)."""
        return self._producer is not None

    async def probe(self, timeout_s: float) -> None:
        """Ask Kafka for cluster metadata; mark it available when it answers."""
        if self._producer is None:
            return
        await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout_s)
        self.mark_available(True)


def _consume_result(future: asyncio.Future[object]) -> None:
    # A delivery nobody awaits any more (its request already spooled) must not log
    # "exception never retrieved"; the failure is counted where it was awaited.
    if not future.cancelled():
        future.exception()
