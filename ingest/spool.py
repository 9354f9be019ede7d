"""One spool file: bodies Kafka could not take in time, fsynced to SQLite before the 200.

One spool file per ingest process (`spool-<host>-<pid>.sqlite`), guarded by an exclusive
`flock` on a sidecar lock file for the owner's whole life. A file whose lock nobody holds
was left by a process that died: any live ingest adopts it and drains it (spools.py).

Writes use SQLite in WAL mode with `synchronous=FULL`, so a row is on disk when the
transaction returns. Concurrent requests share one transaction (group commit): one fsync
covers everything queued while the previous write ran.

The size limit is hard: it counts every stored byte of an entry (body, headers, receipt
id and a row overhead), and a body is admitted only if it fits beside everything already
stored *and* everything still waiting for its commit. Drained entries give their disk
space back (incremental vacuum, WAL truncation) once the freed space adds up or the spool
is empty. The file's layout, lock and names are in spool_file.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson

from ingest.errors import SpoolFullError, SpoolUnavailableError, SpoolUnreadableError
from ingest.record import RawRecord
from ingest.spool_file import (
    SIZE_SQL,
    SMALLEST_ENTRY_BYTES,
    decode,
    encode_meta,
    open_db,
    remove_files,
    set_aside,
    stored_size,
    try_lock,
    unlock,
)

logger = logging.getLogger(__name__)

VACUUM_AFTER_FREED_BYTES = 8 * 1024 * 1024

@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """A record as stored in a spool: `record` is None when its headers cannot be read
    (the body is then quarantined with the raw `meta`)."""

    row_id: int
    receipt_id: str
    meta: bytes
    body: bytes
    record: RawRecord | None

    @property
    def stored_bytes(self) -> int:
        return stored_size(self.receipt_id, self.meta, self.body)


class Spool:
    """One SQLite spool file, owned by this process while open."""

    def __init__(self, path: Path, max_bytes: int, lock_file: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock_file = lock_file
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        try:
            self._db = open_db(path)
            self.depth, self.bytes = self._db.execute(
                f"SELECT count(*), coalesce(sum({SIZE_SQL}), 0) FROM spool"
            ).fetchone()
            self.oldest_ms = self._oldest_ms()
        except sqlite3.Error as error:
            self._executor.shutdown()
            raise SpoolUnreadableError(f"{path} is not a readable spool: {error}") from error
        self._reserved = 0
        self._freed = 0
        self._closed = False
        self._pending: list[tuple[RawRecord, bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    # -- opening -----------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, max_bytes: int) -> Spool:
        """Open this process's own spool file in `directory`.

        Raises SpoolUnavailableError when another live process holds it, and
        SpoolUnreadableError when a file of that name exists but is no spool.
        """
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"spool-{socket.gethostname()}-{os.getpid()}.sqlite"
        lock = try_lock(path)
        if lock is None:
            raise SpoolUnavailableError(f"spool {path} is locked by another live process")
        return cls._open_locked(path, max_bytes, lock)

    @classmethod
    def adopt(cls, path: Path, max_bytes: int) -> Spool | None:
        """Open a spool file left by a dead process, or None if its owner still runs.

        Raises SpoolUnreadableError when the file is no spool.
        """
        lock = try_lock(path)
        if lock is None:
            return None
        if not path.exists():
            # The owner emptied and deleted it between our listing and our lock.
            unlock(path, lock)
            return None
        return cls._open_locked(path, max_bytes, lock)

    @classmethod
    def _open_locked(cls, path: Path, max_bytes: int, lock: int) -> Spool:
        try:
            return cls(path, max_bytes, lock)
        except SpoolUnreadableError as error:
            # Renamed while still locked, so no other process handles it at the same time.
            aside = set_aside(path)
            unlock(path, lock)
            raise SpoolUnreadableError(f"{error}; renamed to {aside.name}, untouched") from error

    # -- writing -----------------------------------------------------------

    async def put(self, record: RawRecord) -> None:
        """Store `record` durably. Returns only once it is fsynced.

        Raises SpoolFullError or SpoolUnavailableError when the body was NOT stored.
        """
        if self._closed:
            raise SpoolUnavailableError(f"spool {self.path} is closed; body not stored")
        meta = encode_meta(record)
        size = stored_size(record.receipt_id, meta, record.body)
        if self.bytes + self._reserved + size > self.max_bytes:
            raise SpoolFullError(
                f"spool {self.path} holds {self.bytes + self._reserved} bytes (bodies and "
                f"headers, some still being written); this body needs {size} more, past "
                f"QIKFLOW_SPOOL_MAX_BYTES={self.max_bytes}"
            )
        # Reserved before the first await, so concurrent requests cannot all pass the check.
        self._reserved += size
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, meta, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [(r.receipt_id, meta, r.body) for r, meta, _ in batch]
            size = sum(stored_size(*row) for row in rows)
            try:
                await loop.run_in_executor(self._executor, self._insert, rows)
            except sqlite3.Error as error:
                self._reserved -= size
                failure = SpoolUnavailableError(
                    f"spool {self.path} refused {len(batch)} bodies, not stored: {error}"
                )
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                continue
            self._reserved -= size
            if self.depth == 0:
                self.oldest_ms = batch[0][0].received_at_ms
            self.depth += len(batch)
            self.bytes += size
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _insert(self, rows: list[tuple[str, bytes, bytes]]) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO spool (receipt_id, meta, body) VALUES (?, ?, ?)", rows
            )

    # -- draining ----------------------------------------------------------

    async def peek(self, limit: int) -> list[SpooledRecord]:
        """The oldest `limit` spooled records, still in the spool.

        Raises SpoolUnreadableError when the file cannot be read.
        """
        loop = asyncio.get_running_loop()
        try:
            rows = await loop.run_in_executor(self._executor, self._select, limit)
        except sqlite3.Error as error:
            raise SpoolUnreadableError(f"{self.path} cannot be read: {error}") from error
        return [SpooledRecord(row_id, receipt_id, meta, body, decode(meta, body))
                for row_id, receipt_id, meta, body in rows]

    def _select(self, limit: int) -> list[tuple[int, str, bytes, bytes]]:
        cursor = self._db.execute(
            "SELECT id, receipt_id, meta, body FROM spool ORDER BY id LIMIT ?", (limit,))
        return list(cursor.fetchall())

    async def remove(self, entries: list[SpooledRecord]) -> None:
        """Delete entries that Kafka acknowledged (or the quarantine took)."""
        if not entries:
            return
        loop = asyncio.get_running_loop()
        size = sum(e.stored_bytes for e in entries)
        self._freed += size
        vacuum = self._freed >= VACUUM_AFTER_FREED_BYTES or len(entries) >= self.depth
        await loop.run_in_executor(self._executor, self._delete,
                                   [e.row_id for e in entries], vacuum)
        if vacuum:
            self._freed = 0
        self.depth -= len(entries)
        self.bytes -= size
        self.oldest_ms = await loop.run_in_executor(self._executor, self._oldest_ms)

    def _delete(self, row_ids: list[int], vacuum: bool) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in row_ids])
        if vacuum:
            # Give the freed pages back to the file system (executescript steps the pragma
            # to its end; execute() would free one page), then shrink the WAL.
            self._db.executescript("PRAGMA incremental_vacuum;")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _oldest_ms(self) -> int | None:
        row = self._db.execute("SELECT meta FROM spool ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, ValueError):
            return int(orjson.loads(row[0])["received_at_ms"])
        return int(time.time() * 1000)

    def writable(self) -> bool:
        """True while an entry with an empty body still fits and the folder is writable."""
        return self.bytes + self._reserved + SMALLEST_ENTRY_BYTES <= self.max_bytes and (
            os.access(self.path.parent, os.W_OK))

    # -- closing -----------------------------------------------------------

    async def close(self) -> None:
        """Wait for queued writes, close the file, delete it if empty, release the lock."""
        self._closed = True
        if self._flusher is not None:
            await self._flusher
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)
        if self.depth == 0:
            remove_files(self.path)
        else:
            logger.warning(
                "spool %s keeps %d bodies (%d bytes) not yet in Kafka; the next ingest "
                "start drains them", self.path, self.depth, self.bytes,
            )
        unlock(self.path, self._lock_file)

    async def set_aside(self) -> Path:
        """Close an unreadable spool and rename it (and its WAL) out of the spool glob, for
        an operator to inspect. Returns the new path."""
        self._closed = True
        if self._flusher is not None:
            await self._flusher
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._executor.shutdown(wait=True)
        aside = set_aside(self.path)
        unlock(self.path, self._lock_file)
        return aside


