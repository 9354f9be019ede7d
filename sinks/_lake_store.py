"""The lake on disk: a DuckDB staging file, and Parquet files rolled from it atomically.

Layout under the lake root:

    type=message.text/date=2025-03-01/part-<uuid>.parquet    what readers see
    _staging/lake.duckdb                                      staged rows, not yet rolled

A roll copies one partition's staged rows to `.part-<uuid>.parquet.tmp`, fsyncs it, then in
one DuckDB transaction deletes those rows and records the pending rename; the rename comes
last. A crash at any point leaves each row either staged or in exactly one visible file:
`recover()` finishes recorded renames and deletes unrecorded temporary files.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

logger = logging.getLogger(__name__)

# Column name -> DuckDB type, in file order. `type` and `date` live in the folder names.
FILE_COLUMNS: dict[str, str] = {
    "event_id": "VARCHAR", "kind": "VARCHAR", "format": "VARCHAR", "account": "VARCHAR",
    "contact": "VARCHAR", "contact_name": "VARCHAR", "business_number": "VARCHAR",
    "message_id": "VARCHAR", "status": "VARCHAR", "occurred_at": "TIMESTAMPTZ",
    "received_at": "TIMESTAMPTZ", "text": "VARCHAR", "media_url": "VARCHAR",
    "mime_type": "VARCHAR", "caption": "VARCHAR", "error_code": "BIGINT", "error_title": "VARCHAR",
    "sent_at": "TIMESTAMPTZ", "delivered_at": "TIMESTAMPTZ", "read_at": "TIMESTAMPTZ",
    "content": "VARCHAR", "raw": "VARCHAR", "schema_version": "INTEGER",
    # Issue 16: an incoming message's reply context and ad referral. Files rolled before
    # lack them; readers use `union_by_name = true`, compaction too.
    "context_message_id": "VARCHAR", "referral_source_id": "VARCHAR", "ctwa_clid": "VARCHAR",
    # Issue 16 §1, §2: the business and contact ids, the group, the message an edit or a
    # revoke changes. Null in files rolled before, as above.
    "phone_number_id": "VARCHAR", "business_account_id": "VARCHAR",
    "contact_user_id": "VARCHAR", "group_id": "VARCHAR", "original_message_id": "VARCHAR",
}
STAGED_COLUMNS: dict[str, str] = {
    "type": "VARCHAR", "date": "DATE", **FILE_COLUMNS, "bytes": "INTEGER",
}
# Event types become folder names: only `kind.name` made of safe characters.
SAFE_TYPE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
TMP_SUFFIX = ".parquet.tmp"


@dataclass
class PartitionState:
    """What is staged for one `type/date`: its size and when its oldest row was staged."""

    bytes: int
    oldest_s: float


class LakeStore:
    """Synchronous; the LakeSink calls it from one worker thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_path = root / "_staging" / "lake.duckdb"
        self._db: duckdb.DuckDBPyConnection | None = None

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        assert self._db is not None, "open() first"
        return self._db

    def open(self) -> None:
        self.staging_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(str(self.staging_path))
        self.db.execute("SET memory_limit = '1GB'")
        columns = ", ".join(f"{name} {kind}" for name, kind in STAGED_COLUMNS.items())
        self.db.execute(f"CREATE TABLE IF NOT EXISTS staged ({columns}, staged_s DOUBLE)")
        self.db.execute("CREATE TABLE IF NOT EXISTS renames (tmp VARCHAR, final VARCHAR)")
        self._widen_staged_columns()

    def _widen_staged_columns(self) -> None:
        """Bring a staging file written by an earlier version to today's columns (an
        INTEGER error code became BIGINT; later columns are added, null in the rows staged
        before); staged rows keep their values."""
        found = dict(self.db.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'staged'"
        ).fetchall())
        for name, kind in STAGED_COLUMNS.items():
            if name not in found:
                self.db.execute(f"ALTER TABLE staged ADD COLUMN {name} {kind}")
                logger.info("lake staging: column %s added", name)
            elif found[name] != kind:
                self.db.execute(f"ALTER TABLE staged ALTER {name} TYPE {kind}")
                logger.info("lake staging: column %s widened from %s to %s", name,
                            found[name], kind)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def recover(self) -> None:
        """Finish renames a crash interrupted; drop temporary files whose rows are staged."""
        pending = self.db.execute("SELECT tmp, final FROM renames").fetchall()
        for tmp, final in pending:
            if Path(tmp).exists():
                Path(tmp).replace(final)
                logger.info("lake recovery: completed rename to %s", final)
        self.db.execute("DELETE FROM renames")
        for stray in self.root.glob(f"type=*/date=*/.*{TMP_SUFFIX}"):
            logger.info("lake recovery: removing %s (its rows are still staged)", stray)
            stray.unlink()

    def stage(self, rows: dict[str, list[Any]], now_s: float) -> None:
        """Append rows (one list per staged column) in one transaction."""
        count = len(rows["event_id"])
        names = list(STAGED_COLUMNS)
        selects = ", ".join(
            f"unnest(${i + 1}::{STAGED_COLUMNS[name]}[])" for i, name in enumerate(names)
        )
        # By name: a staging file of an earlier version has its added columns last.
        self.db.execute(
            f"INSERT INTO staged ({', '.join(names)}, staged_s) "
            f"SELECT {selects}, {now_s!r} AS staged_s",
            [rows[name] for name in names],
        )
        logger.debug("staged %d lake rows", count)

    def partitions(self) -> dict[tuple[str, date], PartitionState]:
        result = self.db.execute(
            "SELECT type, date, sum(bytes), min(staged_s) FROM staged GROUP BY type, date"
        ).fetchall()
        return {(kind, day): PartitionState(int(size), float(oldest))
                for kind, day, size, oldest in result}

    def roll(self, event_type: str, day: date) -> Path | None:
        """Move one partition's staged rows into a new visible Parquet file."""
        if not SAFE_TYPE.match(event_type):
            raise ValueError(f"unsafe event type for a folder name: {event_type!r}")
        folder = self.root / f"type={event_type}" / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}"
        tmp, final = folder / f".{name}{TMP_SUFFIX}", folder / f"{name}.parquet"
        where = f"type = '{event_type}' AND date = DATE '{day.isoformat()}'"
        copied = self.db.execute(
            f"COPY (SELECT {', '.join(FILE_COLUMNS)} FROM staged WHERE {where} "
            f"ORDER BY received_at) TO {_literal(tmp)} (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
        if not copied or not copied[0]:
            tmp.unlink(missing_ok=True)
            return None
        _fsync(tmp)
        self.db.execute("BEGIN TRANSACTION")
        try:
            self.db.execute(f"DELETE FROM staged WHERE {where}")
            self.db.execute("INSERT INTO renames VALUES (?, ?)", [str(tmp), str(final)])
            self.db.execute("COMMIT")
        except duckdb.Error:
            self.db.execute("ROLLBACK")
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(final)
        _fsync(folder)
        self.db.execute("DELETE FROM renames WHERE tmp = ?", [str(tmp)])
        logger.info("lake: rolled %d %s events of %s into %s", copied[0], event_type, day, final)
        return final

    def compact(self, folder: Path, files: list[Path]) -> Path:
        """Merge `files` of one partition into one, keeping one row per event id.

        The merged file becomes visible before the old ones go: a reader in between sees
        duplicates, which every lake query drops by event id, never a missing event.
        """
        name = f"part-{uuid.uuid4().hex}"
        tmp, final = folder / f".{name}{TMP_SUFFIX}", folder / f"{name}.parquet"
        sources = "[" + ", ".join(_literal(path) for path in files) + "]"
        self.db.execute(
            f"COPY (SELECT {', '.join(FILE_COLUMNS)} FROM read_parquet({sources}, "
            "hive_partitioning = false, union_by_name = true) "
            "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at) = 1 "
            f"ORDER BY received_at) TO {_literal(tmp)} (FORMAT parquet, COMPRESSION zstd)"
        )
        _fsync(tmp)
        tmp.replace(final)
        _fsync(folder)
        for path in files:
            path.unlink(missing_ok=True)
        logger.info("lake: compacted %d files of %s into %s", len(files), folder, final.name)
        return final


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
