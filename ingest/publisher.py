"""RawPublisher: stores each body in Kafka within the ack budget, or else in the spool.

Kafka is tried first with an idempotent producer (acks=all). When it does not acknowledge
within QIKFLOW_ACK_TIMEOUT_MS, or cannot be reached, Kafka is marked unavailable and
requests go straight to the spool, so an outage costs each request one spool fsync. If
Kafka then does not answer a metadata request either, the producer is dropped (an aiokafka
producer left to retry against a dead broker spins) and a new one connected with a backoff
that doubles up to RECONNECT_BACKOFF_MAX_S and resets only once Kafka acknowledged a write
again. If Kafka does answer, the producer is kept; the drainer replaces it when the drain
still moves nothing after QIKFLOW_DRAIN_STALL_TIMEOUT_MS.

A record Kafka refuses (too large, invalid) is not an outage: the body is spooled, the
producer (whose sequence that refusal spoiled) replaced, and the drainer sends the body
again alone, quarantining it if Kafka refuses it alone.

An outage logs one WARNING when it starts and one INFO line when it is over (Kafka writable
and the spools drained) with how many bodies were spooled and drained meanwhile; the Kafka
client's own warnings are held back in between (outage.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Literal

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from ingest._producer import (
    answers_metadata,
    consume_result,
    drop,
    new_producer,
    refused_record,
    spent_producer,
)
from ingest.deadlines import AckDeadline
from ingest.errors import RawTopicTooSmallError
from ingest.metrics import IngestMetrics
from ingest.outage import ClientQuiet, Outage
from ingest.raw_topic import RawTopicSize, ensure_raw_topic
from ingest.record import RawRecord
from ingest.settings import IngestSettings
from ingest.spools import Spools
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import TopicCreationError
from qikflow.topics import Topics

logger = logging.getLogger(__name__)

StoredIn = Literal["kafka", "spool"]
RECONNECT_BACKOFF_MIN_S = 0.25
RECONNECT_BACKOFF_MAX_S = 5.0
STARTUP_CONNECT_WAIT_S = 5.0
FLUSH_AT_STOP_S = 10.0
METADATA_TIMEOUT_S = 5.0


class RawPublisher:
    """Owns the Kafka producer of one ingest process and the choice Kafka-or-spool."""

    def __init__(self, settings: IngestSettings, kafka: KafkaSettings, spools: Spools,
                 metrics: IngestMetrics) -> None:
        self.settings = settings
        self.kafka = kafka
        self.spools = spools
        self.metrics = metrics
        self.topic = Topics.from_settings(kafka).raw
        self.size = RawTopicSize.for_settings(settings)
        self.outage: Outage | None = None
        self.topic_too_small: str | None = None
        self._ack_timeout_s = settings.ack_timeout_ms / 1000
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._checker: asyncio.Task[None] | None = None
        self._drops: set[asyncio.Task[None]] = set()
        self._available = False
        self._starting = False
        self._backoff_s = RECONNECT_BACKOFF_MIN_S
        self._quiet = ClientQuiet(lambda: self.outage)
        metrics.kafka_available.set(0)
        # Bound once: label lookups cost more than the increments on the hot path.
        self._stored_in_kafka = metrics.stored.labels("kafka")
        self._stored_in_spool = metrics.stored.labels("spool")
        self._produce_seconds = metrics.produce_seconds

    # -- lifecycle ---------------------------------------------------------

    async def start(self, wait_s: float = STARTUP_CONNECT_WAIT_S) -> None:
        """Connect to Kafka, waiting up to `wait_s`; past that, go on connecting in the
        background while the ingest serves into the spool.

        Raises RawTopicTooSmallError when the raw topic cannot hold a body at the limit.
        """
        self._quiet.install()
        self._starting = True
        self._connector = asyncio.create_task(self._connect(), name="kafka-connect")
        try:
            done, _ = await asyncio.wait((self._connector,), timeout=wait_s)
        finally:
            self._starting = False
        if done:
            self._connector.result()
        else:
            self._connector.add_done_callback(_report_crash)
            self._begin_outage(f"not reachable within {wait_s:.0f}s of start")

    async def stop(self) -> None:
        """Flush what the producer holds, then close it. Unsent bodies are already spooled."""
        for task in (self._connector, self._checker):
            if task is not None:
                task.cancel()
                await asyncio.wait((task,))  # its own failure was reported where it happened
                if not task.cancelled():
                    task.exception()
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.flush(), FLUSH_AT_STOP_S)
            except (TimeoutError, KafkaError) as error:
                logger.warning("producer flush at shutdown failed (%r); bodies are spooled", error)
            await drop(producer)
        if self._drops:
            await asyncio.wait(self._drops)
        self._quiet.remove()

    # -- state -------------------------------------------------------------

    @property
    def producer(self) -> AIOKafkaProducer | None:
        """The producer connected now (None while connecting)."""
        return self._producer

    @property
    def available(self) -> bool:
        """True while requests go to Kafka first."""
        return self._available and self._producer is not None

    def problem(self) -> str | None:
        """Why bodies do not go straight to Kafka now, or None."""
        if self.topic_too_small is not None:
            return self.topic_too_small
        if self.outage is not None and not self._available:
            return self.outage.describe()
        if self._producer is None and self._available:
            return "Kafka producer being replaced"
        return None

    def acknowledged(self) -> None:
        """Kafka acknowledged a write: it is available, and the next outage backs off anew."""
        self._backoff_s = RECONNECT_BACKOFF_MIN_S
        if not self._available and self._producer is not None:
            self._available = True
            self.metrics.kafka_available.set(1)

    def drained(self, count: int) -> None:
        if self.outage is not None:
            self.outage.drained += count

    def spools_empty(self) -> None:
        """Nothing is waiting: Kafka counts as available once connected (the connection
        answered metadata), and an outage is over."""
        if self._producer is None:
            return
        self.acknowledged()
        if self.outage is not None:
            outage, self.outage = self.outage, None
            outage.end(self.topic)

    def lost(self, reason: str, producer: AIOKafkaProducer | None = None) -> None:
        """Kafka did not take a write: mark it unavailable and check whether it answers
        metadata; if not, drop the producer and connect a new one after the backoff.
        `producer` is the one that failed (a failure of one already replaced changes
        nothing)."""
        if producer is not None and producer is not self._producer:
            return
        self._begin_outage(reason)
        self._available = False
        self.metrics.kafka_available.set(0)
        if self._checker is None or self._checker.done():
            self._checker = asyncio.create_task(self._check_metadata(), name="kafka-check")

    async def _check_metadata(self) -> None:
        if not await self.answers_metadata(METADATA_TIMEOUT_S):
            self._reconnect(delay_s=self._next_backoff())

    def replace_producer(self, reason: str, label: str,
                         producer: AIOKafkaProducer | None = None) -> None:
        """Drop the producer and connect a new one at once (Kafka stays available)."""
        if producer is not None and producer is not self._producer:
            return
        if self._producer is not None:
            self.metrics.producer_replacements.labels(label).inc()
            logger.warning("replacing the Kafka producer of %s: %s", self.topic, reason)
        self._reconnect(delay_s=0.0)

    def keep_connecting(self) -> None:
        """Connect again if no producer is connected and no attempt is under way."""
        if self._producer is None and (self._connector is None or self._connector.done()):
            self._reconnect(delay_s=self._next_backoff())

    def _begin_outage(self, reason: str) -> None:
        if self.outage is None:
            self.outage = Outage.begin(reason, self.kafka.bootstrap, self.spools.own.path)

    def _next_backoff(self) -> float:
        delay = self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, RECONNECT_BACKOFF_MAX_S)
        return delay * random.uniform(0.8, 1.2)  # jitter: replicas do not retry in step

    # -- connecting --------------------------------------------------------

    def _reconnect(self, delay_s: float) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            task = asyncio.create_task(drop(producer), name="kafka-producer-drop")
            self._drops.add(task)
            task.add_done_callback(self._drops.discard)
        if self._connector is None or self._connector.done():
            self._connector = asyncio.create_task(self._connect(delay_s),
                                                  name="kafka-connect")
            self._connector.add_done_callback(_report_crash)

    async def _connect(self, delay_s: float = 0.0) -> None:
        while True:
            if delay_s:
                await asyncio.sleep(delay_s)
            producer = self._new_producer()
            try:
                await producer.start()
                await self._check_topic()
            except RawTopicTooSmallError:
                await drop(producer)
                raise
            except (KafkaError, OSError, TopicCreationError) as error:
                await drop(producer)
                if not self._starting:
                    self._begin_outage(repr(error))
                if self.outage is not None:
                    self.outage.last_error = repr(error)
                logger.debug("cannot reach Kafka at %s (%r)", self.kafka.bootstrap, error)
                delay_s = self._next_backoff()
                continue
            self._producer = producer
            if self.outage is None:
                self.acknowledged()
            return

    async def _check_topic(self) -> None:
        """Create the raw topic when missing, and check that it holds a body at the limit.

        At start a topic too small stops the ingest (RawTopicTooSmallError). Later (Kafka
        was away at start, or an operator changed the topic) the ingest is already taking
        bodies: it says so once at ERROR and goes on; what Kafka refuses is quarantined.
        """
        try:
            await ensure_raw_topic(self.kafka, self.topic, self.size)
        except RawTopicTooSmallError as error:
            if self._starting:
                raise
            if self.topic_too_small is None:
                logger.error("%s; bodies Kafka refuses go to the quarantine", error)
            self.topic_too_small = str(error)
            return
        if self.topic_too_small is not None:
            logger.info("%s holds bodies of QIKFLOW_MAX_BODY_BYTES again", self.topic)
            self.topic_too_small = None

    # -- publishing --------------------------------------------------------

    async def publish(self, record: RawRecord) -> StoredIn:
        """Store `record` durably; raises SpoolError only when it was stored nowhere."""
        producer = self._producer
        if self._available and producer is not None:
            try:
                await self.send(record, self._ack_timeout_s, producer)
                self._stored_in_kafka.inc()
                return "kafka"
            except TimeoutError:
                self.metrics.kafka_failures.labels("ack_timeout").inc()
                self.lost(f"no ack within {self.settings.ack_timeout_ms} ms", producer)
            except KafkaError as error:
                self.metrics.kafka_failures.labels(type(error).__name__).inc()
                if refused_record(error) or spent_producer(error):
                    self.replace_producer(f"Kafka refused a record ({error!r}); the body is "
                                          "spooled and sent again alone",
                                          type(error).__name__, producer)
                else:
                    self.lost(repr(error), producer)
        await self.spools.put(record)
        self._stored_in_spool.inc()
        if self.outage is not None:
            self.outage.spooled += 1
        return "spool"

    async def send(self, record: RawRecord, timeout_s: float,
                   producer: AIOKafkaProducer | None = None) -> None:
        """Produce one record; return once Kafka acknowledged it within `timeout_s`.

        Raises TimeoutError or KafkaError when it was not acknowledged in time.
        """
        producer = producer or self._producer
        if producer is None:
            raise KafkaConnectionError("no Kafka producer connected")
        started = time.perf_counter()
        # One timer, not asyncio.timeout and asyncio.wait: this runs once a webhook.
        deadline = AckDeadline(asyncio.get_running_loop(), timeout_s)
        try:
            try:
                delivery = await producer.send(self.topic, record.body,
                                               headers=record.headers())
            except asyncio.CancelledError:
                if deadline.expired():
                    raise TimeoutError from None
                raise
            if not delivery.done():
                # Waited on, never cancelled: a delivery that outlives its request may still
                # succeed (the body is then in Kafka and in the spool; the receipt id marks
                # the copy).
                try:
                    await deadline.until_done(delivery)
                finally:
                    if not delivery.done():
                        delivery.add_done_callback(consume_result)
                if not delivery.done():
                    raise TimeoutError
        finally:
            deadline.cancel()
        delivery.result()
        self._produce_seconds.observe(time.perf_counter() - started)

    async def send_alone(self, record: RawRecord, timeout_s: float) -> None:
        """Send `record` through a producer of its own, so that whatever Kafka answers
        concerns this record only. Raises like send()."""
        producer = self._new_producer()
        try:
            async with asyncio.timeout(timeout_s):
                await producer.start()
            await self.send(record, timeout_s, producer)
        finally:
            await drop(producer)

    def _new_producer(self) -> AIOKafkaProducer:
        return new_producer(
            self.kafka.client_options(),
            linger_ms=self.settings.producer_linger_ms,
            max_batch_bytes=self.settings.producer_max_batch_bytes,
            max_request_bytes=self.size.max_request_bytes,
        )

    async def answers_metadata(self, timeout_s: float) -> bool:
        """True when Kafka answers a metadata request on a connection of its own."""
        return await answers_metadata(self.kafka.client_options(), timeout_s)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("connecting to Kafka failed unexpectedly; bodies go to the spool, and "
                     "the drainer starts connecting again", exc_info=task.exception())
