"""The local durable spool: bodies Kafka could not acknowledge in time, fsynced to SQLite.

One spool file per ingest process (`spool-<host>-<pid>.sqlite`), guarded by an exclusive
`flock` on a sidecar lock file for the owner's whole life. A file whose lock nobody holds
was left by a process that died: any live ingest adopts it and drains it (see drainer.py).

Writes use SQLite in WAL mode with `synchronous=FULL`, so a row is on disk when the
transaction returns. Concurrent requests share one transaction (group commit): one fsync
covers everything queued while the previous write ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson

from ingest.errors import SpoolFullError, SpoolUnavailableError
from ingest.record import RawRecord

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receipt_id TEXT NOT NULL,
    meta BLOB NOT NULL,
    body BLOB NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    row_id: int
    record: RawRecord


class Spool:
    """One SQLite spool file, owned by this process while open."""

    def __init__(self, path: Path, max_bytes: int, lock_file: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock_file = lock_file
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self.depth, self.bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM spool"
        ).fetchone()
        self._pending: list[tuple[RawRecord, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    # -- opening -----------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, max_bytes: int) -> Spool:
        """Open this process's own spool file in `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"spool-{socket.gethostname()}-{os.getpid()}.sqlite"
        lock = _try_lock(path)
        if lock is None:
            raise SpoolUnavailableError(f"spool {path} is locked by another live process")
        return cls(path, max_bytes, lock)

    @classmethod
    def adopt(cls, path: Path, max_bytes: int) -> Spool | None:
        """Open a spool file left by a dead process, or None if its owner still runs."""
        lock = _try_lock(path)
        if lock is None:
            return None
        if not path.exists():
            # The owner emptied and deleted it between our listing and our lock.
            _unlock(path, lock)
            return None
        return cls(path, max_bytes, lock)

    # -- writing -----------------------------------------------------------

    async def put(self, record: RawRecord) -> None:
        """Store `record` durably. Returns only once it is fsynced.

        Raises SpoolFullError or SpoolUnavailableError when the body was NOT stored.
        """
        if self.bytes + len(record.body) > self.max_bytes:
            raise SpoolFullError(
                f"spool {self.path} holds {self.bytes} bytes; adding {len(record.body)} would "
                f"pass QIKFLOW_SPOOL_MAX_BYTES={self.max_bytes}"
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await loop.run_in_executor(self._executor, self._insert, [r for r, _ in batch])
            except sqlite3.Error as error:
                failure = SpoolUnavailableError(
                    f"spool {self.path} refused {len(batch)} bodies, not stored: {error}"
                )
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                continue
            self.depth += len(batch)
            self.bytes += sum(len(r.body) for r, _ in batch)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _insert(self, records: list[RawRecord]) -> None:
        rows = [(r.receipt_id, _encode_meta(r), r.body) for r in records]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO spool (receipt_id, meta, body) VALUES (?, ?, ?)", rows
            )

    # -- draining ----------------------------------------------------------

    async def peek(self, limit: int) -> list[SpooledRecord]:
        """The oldest `limit` spooled records, still in the spool."""
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._executor, self._select, limit)
        return [SpooledRecord(row_id, _decode(meta, body)) for row_id, meta, body in rows]

    def _select(self, limit: int) -> list[tuple[int, bytes, bytes]]:
        cursor = self._db.execute("SELECT id, meta, body FROM spool ORDER BY id LIMIT ?", (limit,))
        return list(cursor.fetchall())

    async def remove(self, entries: list[SpooledRecord]) -> None:
        """Delete entries that Kafka acknowledged."""
        if not entries:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._delete, [e.row_id for e in entries])
        self.depth -= len(entries)
        self.bytes -= sum(len(e.record.body) for e in entries)

    def _delete(self, row_ids: list[int]) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in row_ids])

    def writable(self) -> bool:
        return self.bytes < self.max_bytes and os.access(self.path.parent, os.W_OK)

    # -- closing -----------------------------------------------------------

    async def close(self) -> None:
        """Wait for queued writes, close the file, delete it if empty, release the lock."""
        if self._flusher is not None:
            await self._flusher
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)
        if self.depth == 0:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        else:
            logger.warning(
                "spool %s keeps %d bodies (%d bytes) not yet in Kafka; the next ingest "
                "start drains them", self.path, self.depth, self.bytes,
            )
        _unlock(self.path, self._lock_file)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _try_lock(path: Path) -> int | None:
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlock(path: Path, fd: int) -> None:
    if not path.exists():
        with contextlib.suppress(FileNotFoundError):
            _lock_path(path).unlink()
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _encode_meta(record: RawRecord) -> bytes:
    return orjson.dumps(
        {
            "receipt_id": record.receipt_id,
            "received_at_ms": record.received_at_ms,
            "source": record.source,
            "account": record.account,
            "content_type": record.content_type,
            "remote_addr": record.remote_addr,
        }
    )


def _decode(meta: bytes, body: bytes) -> RawRecord:
    fields = orjson.loads(meta)
    return RawRecord(body=bytes(body), **fields)
