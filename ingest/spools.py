"""Spools: every spool file one ingest process writes or drains, and their gauges.

The one owner of the spools: the publisher puts bodies through it, the drainer takes
them out through it, and only it sets the spool gauges. It adopts the files of processes
that died, and renames aside (one ERROR line each) any `spool-*.sqlite` it cannot read,
so one bad file never stops the others from draining.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ingest.errors import SpoolUnavailableError, SpoolUnreadableError
from ingest.metrics import IngestMetrics
from ingest.record import RawRecord
from ingest.spool import Spool, SpooledRecord
from ingest.spool_file import SPOOL_GLOB

logger = logging.getLogger(__name__)

ADOPT_EVERY_S = 2.0


class Spools:
    """This process's own spool plus the orphaned spools it adopted."""

    def __init__(self, directory: Path, max_bytes: int, metrics: IngestMetrics) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.own = self._create_own()
        self.adopted: list[Spool] = []
        self._next_adopt = 0.0
        self._turn = 0
        self.refresh()

    def _create_own(self) -> Spool:
        try:
            return Spool.create(self.directory, self.max_bytes)
        except SpoolUnreadableError as error:
            # A file of our name left by an earlier process with our pid (containers
            # reuse pids) that is no spool: set aside, start a new one.
            self._report_unreadable(error)
            return Spool.create(self.directory, self.max_bytes)

    @property
    def all(self) -> list[Spool]:
        return [self.own, *self.adopted]

    @property
    def depth(self) -> int:
        return sum(spool.depth for spool in self.all)

    @property
    def bytes(self) -> int:
        return sum(spool.bytes for spool in self.all)

    def oldest_age_s(self) -> float | None:
        """Age of the oldest body waiting in any of these spools, None when all are empty."""
        oldest = [s.oldest_ms for s in self.all if s.depth and s.oldest_ms is not None]
        if not oldest:
            return None
        return max(0.0, time.time() - min(oldest) / 1000)

    def writable(self) -> bool:
        return self.own.writable()

    # -- writing -------------------------------------------------------------

    async def put(self, record: RawRecord) -> None:
        """Store `record` in this process's spool; raises SpoolError when it was not kept."""
        try:
            await self.own.put(record)
        finally:
            self.refresh()

    # -- draining ------------------------------------------------------------

    def in_turn(self) -> list[Spool]:
        """The spools with bodies, starting one further each call: no spool waits behind
        another for longer than one round."""
        spools = [spool for spool in self.all if spool.depth]
        if not spools:
            return []
        self._turn = (self._turn + 1) % len(spools)
        return spools[self._turn:] + spools[:self._turn]

    async def remove(self, spool: Spool, entries: list[SpooledRecord]) -> None:
        await spool.remove(entries)
        self.refresh()

    async def set_aside(self, spool: Spool, error: SpoolUnreadableError) -> None:
        """Rename an unreadable spool aside and go on without it (a new own spool if it was
        this process's)."""
        aside = await spool.set_aside()
        self._report_unreadable(SpoolUnreadableError(
            f"{error}; renamed to {aside.name}, untouched"))
        if spool is self.own:
            self.own = Spool.create(self.directory, self.max_bytes)
        else:
            self.adopted.remove(spool)
        self.refresh()

    def adopt_orphans(self, *, now: bool = False) -> None:
        """Adopt spool files whose process died (every ADOPT_EVERY_S, or `now`)."""
        if not now and time.monotonic() < self._next_adopt:
            return
        self._next_adopt = time.monotonic() + ADOPT_EVERY_S
        taken = {spool.path for spool in self.all}
        for path in sorted(self.directory.glob(SPOOL_GLOB)):
            if path in taken:
                continue
            try:
                spool = Spool.adopt(path, self.max_bytes)
            except SpoolUnreadableError as error:
                self._report_unreadable(error)
                continue
            except (SpoolUnavailableError, OSError) as error:
                logger.warning("cannot adopt spool %s now (%s); trying again", path, error)
                continue
            if spool is None:
                continue
            logger.info("adopted spool %s left by a stopped process: %d bodies to drain",
                        path, spool.depth)
            self.adopted.append(spool)
        self.refresh()

    async def release_empty(self) -> None:
        """Close (and so delete) adopted spools that are drained."""
        for spool in [s for s in self.adopted if s.depth == 0]:
            await spool.close()
            self.adopted.remove(spool)

    def _report_unreadable(self, error: SpoolUnreadableError) -> None:
        self.metrics.spool_files_set_aside.inc()
        # Formatted here, not by logging: the flood guard folds repeats of one template,
        # and every file set aside deserves its own line.
        logger.error(f"{error}; draining goes on with the other spools")

    # -- gauges and closing ----------------------------------------------------

    def refresh(self) -> None:
        """Set the spool gauges from what the spools hold now."""
        self.metrics.spool_depth.set(self.depth)
        self.metrics.spool_bytes.set(self.bytes)
        self.metrics.spool_oldest_age.set(self.oldest_age_s() or 0.0)

    async def close(self) -> None:
        for spool in self.adopted:
            await spool.close()
        self.adopted.clear()
        await self.own.close()
