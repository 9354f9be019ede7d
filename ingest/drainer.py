"""SpoolDrainer: moves spooled bodies into Kafka, and adopts spools of dead processes.

An entry leaves the spool only after Kafka acknowledged it. While Kafka is marked
unavailable, each round is also the health probe that marks it available again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from aiokafka.errors import KafkaError

from ingest.publisher import RawPublisher
from ingest.spool import Spool, SpooledRecord

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0
ADOPT_EVERY_S = 2.0
PROBE_BACKOFF_MAX_S = 2.0


class SpoolDrainer:
    """Background task of one ingest process."""

    def __init__(self, publisher: RawPublisher, directory: Path, interval_s: float,
                 batch_size: int) -> None:
        self.publisher = publisher
        self.directory = directory
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.adopted: list[Spool] = []
        self._task: asyncio.Task[None] | None = None
        self._next_adopt = 0.0

    @property
    def spools(self) -> list[Spool]:
        return [self.publisher.spool, *self.adopted]

    def depth(self) -> int:
        return sum(spool.depth for spool in self.spools)

    def bytes(self) -> int:
        return sum(spool.bytes for spool in self.spools)

    async def start(self) -> None:
        self._adopt_orphans()
        self._task = asyncio.create_task(self._run(), name="spool-drainer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for spool in self.adopted:
            await spool.close()
        self.adopted.clear()

    async def _run(self) -> None:
        pause = self.interval_s
        while True:
            try:
                moved = await self._round()
            except (KafkaError, OSError, TimeoutError) as error:
                self.publisher.mark_available(False, repr(error))
                moved = 0
            self._refresh_gauges()
            if moved:
                pause = 0.0
            elif self.publisher.available:
                pause = self.interval_s
            else:
                pause = min(max(pause * 2, self.interval_s), PROBE_BACKOFF_MAX_S)
            await asyncio.sleep(pause)

    async def _round(self) -> int:
        if time.monotonic() >= self._next_adopt:
            self._adopt_orphans()
        if not self.publisher.connected:
            return 0
        if not self.publisher.available and self.depth() == 0:
            await self.publisher.probe(SEND_TIMEOUT_S)
            return 0
        moved = 0
        for spool in self.spools:
            entries = await spool.peek(self.batch_size)
            if not entries:
                continue
            acked = await self._send(entries)
            await spool.remove(acked)
            moved += len(acked)
            self.publisher.metrics.drained.inc(len(acked))
            if len(acked) < len(entries):
                return moved
            self.publisher.mark_available(True)
        await self._release_empty_adopted()
        if moved:
            logger.info("drained %d spooled bodies into %s (%d left)", moved,
                        self.publisher.topic, self.depth())
        return moved

    async def _send(self, entries: list[SpooledRecord]) -> list[SpooledRecord]:
        """Send entries; return those Kafka acknowledged, in order, up to the first failure."""
        sends = [asyncio.ensure_future(self.publisher.send(e.record, SEND_TIMEOUT_S))
                 for e in entries]
        done, pending = await asyncio.wait(sends, timeout=SEND_TIMEOUT_S)
        for task in pending:
            task.cancel()
        acked: list[SpooledRecord] = []
        failure: BaseException | None = None
        for entry, task in zip(entries, sends, strict=True):
            if task in done and not task.cancelled() and task.exception() is None:
                acked.append(entry)
            elif failure is None:
                failure = (task.exception() if task in done and not task.cancelled()
                           else TimeoutError(f"no ack within {SEND_TIMEOUT_S:.0f}s"))
        if failure is not None:
            self.publisher.mark_available(False, f"draining the spool: {failure!r}")
        return acked

    def _adopt_orphans(self) -> None:
        self._next_adopt = time.monotonic() + ADOPT_EVERY_S
        taken = {spool.path for spool in self.spools}
        for path in sorted(self.directory.glob("spool-*.sqlite")):
            if path in taken:
                continue
            spool = Spool.adopt(path, self.publisher.spool.max_bytes)
            if spool is None:
                continue
            logger.info("adopted spool %s left by a stopped process: %d bodies to drain",
                        path, spool.depth)
            self.adopted.append(spool)

    async def _release_empty_adopted(self) -> None:
        for spool in [s for s in self.adopted if s.depth == 0]:
            await spool.close()
            self.adopted.remove(spool)

    def _refresh_gauges(self) -> None:
        self.publisher.metrics.spool_depth.set(self.depth())
        self.publisher.metrics.spool_bytes.set(self.bytes())
