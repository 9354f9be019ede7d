"""SpoolDrainer: moves spooled bodies into Kafka; what Kafka refuses alone goes to quarantine.

Each round takes up to QIKFLOW_DRAIN_BATCH_SIZE bodies from each spool with bodies, a
different spool first each round, and deletes an entry only after Kafka acknowledged it.
A body Kafka refuses (too large, invalid) is sent again alone, through a producer of its
own, and quarantined if refused alone: it never holds back another. While Kafka is marked
unavailable, each round is also the check that marks it available again.

When the spools hold bodies, Kafka answers metadata, and yet nothing was moved for
QIKFLOW_DRAIN_STALL_TIMEOUT_MS, the producer is replaced (logged and counted): the drain
always resumes without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingest._producer import refused_record, spent_producer
from ingest.errors import SpoolUnreadableError
from ingest.metrics import IngestMetrics
from ingest.publisher import RawPublisher
from ingest.quarantine import Quarantine
from ingest.spool import Spool, SpooledRecord
from ingest.spools import ADOPT_EVERY_S, Spools

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0
PAUSE_MAX_S = 2.0
PROGRESS_LOG_EVERY_S = 30.0
UNREADABLE_HEADERS = "unreadable_headers"


@dataclass
class _Sent:
    """What became of one batch of spooled records."""

    acked: list[SpooledRecord] = field(default_factory=list)
    refused: list[SpooledRecord] = field(default_factory=list)
    spent: BaseException | None = None
    failure: BaseException | None = None


class SpoolDrainer:
    """Background task of one ingest process."""

    def __init__(self, publisher: RawPublisher, spools: Spools, quarantine: Quarantine,
                 metrics: IngestMetrics, *, interval_s: float, batch_size: int,
                 stall_timeout_s: float) -> None:
        self.publisher = publisher
        self.spools = spools
        self.quarantine = quarantine
        self.metrics = metrics
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.stall_timeout_s = stall_timeout_s
        self.quarantined = 0
        self._task: asyncio.Task[None] | None = None
        self._progress_at = time.monotonic()
        self._watch_from = time.monotonic()
        self._logged_at = time.monotonic()
        self._moved_since_log = 0
        self._moved_since_empty = 0
        self._next_count = 0.0

    async def start(self) -> None:
        self.spools.adopt_orphans(now=True)
        await self._count_quarantine()
        self._task = asyncio.create_task(self._run(), name="spool-drainer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def stalled_for_s(self) -> float:
        """Seconds since the drain last moved a body, while bodies wait (0 otherwise)."""
        if self.spools.depth == 0:
            return 0.0
        return time.monotonic() - self._progress_at

    async def _run(self) -> None:
        pause = self.interval_s
        while True:
            try:
                moved = await self._round()
            except Exception:
                # The drainer must outlive any one fault: a round that failed in a way not
                # foreseen above is logged with its traceback and tried again.
                logger.exception("a spool drain round failed; trying again in %.0fs",
                                 PAUSE_MAX_S)
                moved, pause = 0, PAUSE_MAX_S
            if moved:
                pause = 0.0
            elif self.publisher.available:
                pause = self.interval_s
            else:
                pause = min(max(pause * 2, self.interval_s), PAUSE_MAX_S)
            await asyncio.sleep(pause)

    async def _round(self) -> int:
        spools, publisher = self.spools, self.publisher
        spools.adopt_orphans()
        await spools.release_empty()
        await self._count_quarantine()
        spools.refresh()
        if spools.depth == 0:
            self._progress_at = self._watch_from = time.monotonic()
            self._report_empty()
            publisher.spools_empty()
            return 0
        producer = publisher.producer
        if producer is None:
            # Connecting (with its own backoff) is no stall of the drain.
            self._watch_from = time.monotonic()
            publisher.keep_connecting()
            return 0
        moved = 0
        for spool in spools.in_turn():
            try:
                entries = await spool.peek(self.batch_size)
            except SpoolUnreadableError as error:
                await spools.set_aside(spool, error)
                continue
            sent = await self._send(entries, producer)
            await spools.remove(spool, sent.acked)
            moved += len(sent.acked)
            if sent.acked:
                publisher.acknowledged()
            if sent.refused or sent.spent is not None:
                cause = sent.spent or "a refused record"
                publisher.replace_producer(f"draining the spool: {cause!r}",
                                           type(cause).__name__, producer)
                moved += await self._retry_alone(spool, sent.refused)
            if sent.failure is not None:
                publisher.lost(f"draining the spool: {sent.failure!r}", producer)
                break
            if publisher.producer is not producer:
                break
        await self._progress(moved, producer)
        return moved

    async def _send(self, entries: list[SpooledRecord], producer: AIOKafkaProducer) -> _Sent:
        """Send entries at once; sort them by what Kafka answered."""
        sent = _Sent()
        readable = [e for e in entries if e.record is not None]
        for entry in entries:
            if entry.record is None:
                sent.refused.append(entry)
        sends = [asyncio.ensure_future(self.publisher.send(e.record, SEND_TIMEOUT_S, producer))
                 for e in readable if e.record is not None]
        if not sends:
            return sent
        done, pending = await asyncio.wait(sends, timeout=SEND_TIMEOUT_S)
        for task in pending:
            task.cancel()
        for entry, task in zip(readable, sends, strict=True):
            error = (task.exception() if task in done and not task.cancelled()
                     else TimeoutError(f"no ack within {SEND_TIMEOUT_S:.0f}s"))
            if error is None:
                sent.acked.append(entry)
            elif refused_record(error):
                sent.refused.append(entry)
            elif spent_producer(error):
                sent.spent = sent.spent or error
            elif sent.failure is None:
                sent.failure = error
        return sent

    async def _retry_alone(self, spool: Spool, refused: list[SpooledRecord]) -> int:
        """Send each refused entry alone; quarantine those Kafka refuses alone. Returns how
        many left the spool."""
        moved = 0
        for entry in refused:
            if entry.record is None:
                await self._quarantine(spool, entry, UNREADABLE_HEADERS,
                                       "its headers in the spool cannot be read")
                moved += 1
                continue
            try:
                await self.publisher.send_alone(entry.record, SEND_TIMEOUT_S)
            except KafkaError as error:
                if not refused_record(error):
                    return moved  # not about this record: the next round tries again
                await self._quarantine(spool, entry, type(error).__name__, repr(error))
                moved += 1
                continue
            except (OSError, TimeoutError):
                return moved
            await self.spools.remove(spool, [entry])
            moved += 1
        return moved

    async def _quarantine(self, spool: Spool, entry: SpooledRecord, label: str,
                          reason: str) -> None:
        await asyncio.to_thread(self.quarantine.put, entry.receipt_id, entry.meta,
                                entry.body, reason)
        await self.spools.remove(spool, [entry])
        self.metrics.quarantined.labels(label).inc()
        self.quarantined += 1
        self.metrics.quarantine_bodies.set(self.quarantined)
        logger.warning("quarantined body %s (%d bytes): Kafka refused it sent alone (%s); "
                       "see `qikflow spool status`", entry.receipt_id, len(entry.body), reason)

    async def _count_quarantine(self) -> None:
        if time.monotonic() < self._next_count:
            return
        self._next_count = time.monotonic() + ADOPT_EVERY_S
        self.quarantined = await asyncio.to_thread(self.quarantine.count)
        self.metrics.quarantine_bodies.set(self.quarantined)

    async def _progress(self, moved: int, producer: AIOKafkaProducer) -> None:
        """Count and log what moved; replace a producer that moves nothing."""
        now = time.monotonic()
        if moved or self.publisher.producer is not producer:
            self._watch_from = now
        if moved:
            self._progress_at = now
            self._moved_since_log += moved
            self._moved_since_empty += moved
            self.metrics.drained.inc(moved)
            self.publisher.drained(moved)
            if now - self._logged_at >= PROGRESS_LOG_EVERY_S:
                logger.info("drained %d spooled bodies into %s in the last %.0fs (%d left)",
                            self._moved_since_log, self.publisher.topic,
                            now - self._logged_at, self.spools.depth)
                self._logged_at, self._moved_since_log = now, 0
            return
        stalled_s = now - self._watch_from
        if stalled_s < self.stall_timeout_s:
            return
        self._watch_from = now
        if await self.publisher.answers_metadata(SEND_TIMEOUT_S):
            self.publisher.replace_producer(
                f"the drain moved nothing for {stalled_s:.0f}s with {self.spools.depth} "
                "bodies waiting, although Kafka answers metadata", "drain_stalled")
        else:
            self.publisher.lost(f"no metadata answer within {SEND_TIMEOUT_S:.0f}s while "
                                "draining")

    def _report_empty(self) -> None:
        if self._moved_since_empty and self.publisher.outage is None:
            logger.info("drained %d spooled bodies into %s; the spools are empty",
                        self._moved_since_empty, self.publisher.topic)
        self._moved_since_empty = 0
        self._moved_since_log = 0
        self._logged_at = time.monotonic()
