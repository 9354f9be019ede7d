"""The quarantine: bodies Kafka refused on their own, kept byte for byte beside the spools.

A body lands here only when Kafka refused it alone (too large, invalid, corrupt; see
_producer.py), never because Kafka was away. It leaves only on an operator's request:
`qikflow spool export` writes it out unchanged, `qikflow spool retry` hands it back to
the spool to be sent again. One SQLite file, `quarantine.sqlite` in the spool directory,
shared by every ingest process there; written like the spool (WAL, `synchronous=FULL`),
so a quarantined body is as durable as a spooled one.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.spool_file import set_aside

logger = logging.getLogger(__name__)

FILE_NAME = "quarantine.sqlite"
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    receipt_id TEXT PRIMARY KEY,
    quarantined_at_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    meta BLOB NOT NULL,
    body BLOB NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class QuarantinedBody:
    """One quarantine entry; `body` is empty in listings (see Quarantine.entries)."""

    receipt_id: str
    quarantined_at_ms: int
    reason: str
    meta: bytes
    size: int
    body: bytes = b""


class Quarantine:
    """The quarantine file of one spool directory. Each call opens its own connection, so
    the drainer may call it from a worker thread and other processes may use it at once."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME

    @classmethod
    def open(cls, directory: Path) -> Quarantine:
        """The quarantine of `directory`, created when missing. An unreadable file is
        renamed aside (one ERROR line) and a new one started."""
        directory.mkdir(parents=True, exist_ok=True)
        quarantine = cls(directory)
        try:
            quarantine.count()
        except sqlite3.DatabaseError as error:
            aside = set_aside(quarantine.path)
            logger.error("quarantine %s is unreadable (%s); renamed to %s, untouched, and a "
                         "new quarantine started", quarantine.path, error, aside.name)
            quarantine.count()
        return quarantine

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(_SCHEMA)
            yield db
        finally:
            db.close()

    def put(self, receipt_id: str, meta: bytes, body: bytes, reason: str) -> None:
        """Keep a body durably (fsynced on return). A receipt id already here is kept once."""
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO quarantine (receipt_id, quarantined_at_ms, reason, "
                "meta, body) VALUES (?, ?, ?, ?, ?)",
                (receipt_id, time.time_ns() // 1_000_000, reason, meta, body),
            )

    def count(self) -> int:
        with self._connect() as db:
            count: int = db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        return count

    def entries(self, receipt_ids: list[str] | None = None, *,
                with_bodies: bool = False) -> list[QuarantinedBody]:
        """Entries in the order they came, all or those of `receipt_ids`."""
        body = "body" if with_bodies else "x''"
        query = (f"SELECT receipt_id, quarantined_at_ms, reason, meta, length(body), {body} "
                 "FROM quarantine")
        with self._connect() as db:
            if receipt_ids is None:
                rows = db.execute(query + " ORDER BY rowid").fetchall()
            else:
                rows = [row for receipt in receipt_ids
                        for row in db.execute(query + " WHERE receipt_id = ?", (receipt,))]
        return [QuarantinedBody(r[0], r[1], r[2], bytes(r[3]), r[4], bytes(r[5])) for r in rows]

    def remove(self, receipt_ids: list[str]) -> None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM quarantine WHERE receipt_id = ?",
                           [(r,) for r in receipt_ids])
            db.execute("COMMIT")
