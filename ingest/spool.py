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
is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
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

logger = logging.getLogger(__name__)

SPOOL_GLOB = "spool-*.sqlite"
ROW_OVERHEAD_BYTES = 32
VACUUM_AFTER_FREED_BYTES = 8 * 1024 * 1024
WAL_LIMIT_BYTES = 4 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receipt_id TEXT NOT NULL,
    meta BLOB NOT NULL,
    body BLOB NOT NULL
)
"""
_SIZE = f"length(body) + length(meta) + length(receipt_id) + {ROW_OVERHEAD_BYTES}"


def stored_size(receipt_id: str, meta: bytes, body: bytes) -> int:
    """The bytes one entry counts against the spool's limit."""
    return len(body) + len(meta) + len(receipt_id) + ROW_OVERHEAD_BYTES


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
            self._db = _open(path)
            self.depth, self.bytes = self._db.execute(
                f"SELECT count(*), coalesce(sum({_SIZE}), 0) FROM spool"
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
        lock = _try_lock(path)
        if lock is None:
            raise SpoolUnavailableError(f"spool {path} is locked by another live process")
        return cls._open_locked(path, max_bytes, lock)

    @classmethod
    def adopt(cls, path: Path, max_bytes: int) -> Spool | None:
        """Open a spool file left by a dead process, or None if its owner still runs.

        Raises SpoolUnreadableError when the file is no spool.
        """
        lock = _try_lock(path)
        if lock is None:
            return None
        if not path.exists():
            # The owner emptied and deleted it between our listing and our lock.
            _unlock(path, lock)
            return None
        return cls._open_locked(path, max_bytes, lock)

    @classmethod
    def _open_locked(cls, path: Path, max_bytes: int, lock: int) -> Spool:
        try:
            return cls(path, max_bytes, lock)
        except SpoolUnreadableError as error:
            # Renamed while still locked, so no other process handles it at the same time.
            aside = set_aside(path)
            _unlock(path, lock)
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
        _unlock(self.path, self._lock_file)

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
        _unlock(self.path, self._lock_file)
        return aside


@dataclass(frozen=True, slots=True)
class SpoolSummary:
    """What a spool file holds, read without taking it over (`qikflow spool status`)."""

    path: Path
    in_use: bool
    depth: int
    bytes: int
    oldest_ms: int | None


def summarize(path: Path) -> SpoolSummary:
    """Read what `path` holds, leaving it to its owner. Raises SpoolUnreadableError."""
    lock = _try_lock(path)
    if lock is not None:
        _unlock(path, lock)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            depth, size = db.execute(
                f"SELECT count(*), coalesce(sum({_SIZE}), 0) FROM spool").fetchone()
            row = db.execute("SELECT meta FROM spool ORDER BY id LIMIT 1").fetchone()
        finally:
            db.close()
    except sqlite3.Error as error:
        raise SpoolUnreadableError(f"{path} is not a readable spool: {error}") from error
    record = decode(row[0], b"") if row else None
    return SpoolSummary(path, lock is None, depth, size,
                        record.received_at_ms if record else None)


def set_aside(path: Path) -> Path:
    """Rename `path` and its SQLite companions to `unreadable-<name>-<time>` (no longer a
    spool for anyone's glob)."""
    aside = path.with_name(f"unreadable-{path.name}-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("-wal", "-shm", ""):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{aside}{suffix}"))
    return aside


def remove_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _open(path: Path) -> sqlite3.Connection:
    existing = path.exists() and path.stat().st_size > 0
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        if existing:
            # Read before anything is changed: a file that is no spool stays untouched.
            db.execute("SELECT id, receipt_id, meta, body FROM spool LIMIT 0").fetchall()
        # Only takes effect in a new file (before the first table): older spools keep
        # their space until they are emptied and deleted.
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        db.execute(_SCHEMA)
    except sqlite3.Error:
        db.close()
        raise
    return db


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


def encode_meta(record: RawRecord) -> bytes:
    """The record's headers as stored beside its body."""
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


def decode(meta: bytes, body: bytes) -> RawRecord | None:
    """The record stored as `meta` and `body`, or None when `meta` cannot be read."""
    try:
        fields = orjson.loads(meta)
        return RawRecord(body=bytes(body), **fields)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None


# An entry with an empty body: while this does not fit, the spool can take nothing.
SMALLEST_ENTRY_BYTES = stored_size(
    "0" * 36, encode_meta(RawRecord(b"", "0" * 36, 1_000_000_000_000)), b"")
