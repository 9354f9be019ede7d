"""A spool file on disk: its schema, how an entry is stored and counted, its lock, its name.

Shared by the spool that writes a file (spool.py), the owner that adopts and sets files
aside (spools.py), the quarantine and `qikflow spool status`, which reads a file without
taking it over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from ingest.errors import SpoolUnreadableError
from ingest.record import RawRecord

SPOOL_GLOB = "spool-*.sqlite"
ROW_OVERHEAD_BYTES = 32
WAL_LIMIT_BYTES = 4 * 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receipt_id TEXT NOT NULL,
    meta BLOB NOT NULL,
    body BLOB NOT NULL
)
"""
SIZE_SQL = f"length(body) + length(meta) + length(receipt_id) + {ROW_OVERHEAD_BYTES}"


def stored_size(receipt_id: str, meta: bytes, body: bytes) -> int:
    """The bytes one entry counts against the spool's limit."""
    return len(body) + len(meta) + len(receipt_id) + ROW_OVERHEAD_BYTES


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
    lock = try_lock(path)
    if lock is not None:
        unlock(path, lock)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            depth, size = db.execute(
                f"SELECT count(*), coalesce(sum({SIZE_SQL}), 0) FROM spool").fetchone()
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
    """Delete a spool file with its WAL and shared-memory companions."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def open_db(path: Path) -> sqlite3.Connection:
    """Open (or create) a spool file for writing; sqlite3.Error when it is no spool."""
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
        db.execute(SCHEMA)
    except sqlite3.Error:
        db.close()
        raise
    return db


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def try_lock(path: Path) -> int | None:
    """An exclusive flock on the file's sidecar lock, or None when another process holds it."""
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def unlock(path: Path, fd: int) -> None:
    """Release the lock (and delete the lock file once the spool file is gone)."""
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
