"""LakeSink: every event, as Parquet under `type=<type>/date=<YYYY-MM-DD>/`, via DuckDB.

A batch is durable once it is in the DuckDB staging file, so offsets are committed then;
staged rows roll into one Parquet file per partition when they reach `lake_roll_bytes`
or have waited `lake_roll_interval_s`, so files stay large. Small files of a partition are
merged by compaction. Delivery is at-least-once: readers keep one row per `event_id`
(`qikflow stats` does). One lake sink process per lake folder: the staging file is locked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson

from sinks._flat_columns import message_fields, utc
from sinks._lake_notices import notice_columns
from sinks._lake_store import SAFE_TYPE, STAGED_COLUMNS, LakeStore
from sinks.base import (
    PoisonRecordError,
    Sink,
    SinkError,
    SinkRecord,
    StoreUnavailableError,
)
from streams.events import EditContent, OptOutEvent, RevokeContent, StatusContent
from streams.notices import NoticeEvent

logger = logging.getLogger(__name__)

T = TypeVar("T")

# DuckDB errors caused by the values of a record (a number out of range for its column, a
# string that is not valid for its type), not by the store: the driver isolates the record.
DATA_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.TypeMismatchException,
    duckdb.ConstraintException,
)


class LakeSink(Sink):
    """Stages batches in DuckDB and rolls them into large Parquet files."""

    name = "lake"

    def __init__(
        self, root: Path, *, roll_bytes: int, roll_interval_s: float, compact_min_files: int,
        compact_interval_s: float = 600.0, small_file_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.root = root
        self.roll_bytes = roll_bytes
        self.roll_interval_s = roll_interval_s
        self.compact_min_files = compact_min_files
        self.compact_interval_s = compact_interval_s
        self.small_file_bytes = small_file_bytes
        self._store = LakeStore(root)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake")
        self._next_compaction_s = 0.0
        self._skipped: set[Path] = set()

    async def _run(self, action: str, function: Callable[..., T], *args: Any) -> T:
        """Run blocking DuckDB and file work off the event loop, as a SinkError on failure:
        poison when a record's values caused it, retriable when the store did."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        except DATA_ERRORS as error:
            raise PoisonRecordError(
                f"lake {action} failed on a value: {type(error).__name__}: {error}; "
                "nothing of it was staged"
            ) from error
        except (duckdb.Error, OSError) as error:
            raise StoreUnavailableError(
                f"lake {action} failed: {type(error).__name__}: {error}; staged rows are kept"
            ) from error

    async def setup(self) -> None:
        await self._run("open", self._store.open)
        await self._run("recovery", self._store.recover)
        logger.info("lake ready under %s (staging %s)", self.root, self._store.staging_path)

    async def write(self, batch: list[SinkRecord]) -> None:
        try:
            rows = _to_columns(batch)
        except (TypeError, ValueError) as error:  # orjson: an integer beyond 64 bits, ...
            raise PoisonRecordError(
                f"lake row of {len(batch)} events failed on a value: {error}; "
                "nothing of it was staged"
            ) from error
        await self._run(f"staging of {len(batch)} events", self._store.stage, rows, time.time())

    async def maintain(self) -> None:
        """Roll partitions that are big or old enough; compact small files now and then."""
        now_s = time.time()
        partitions = await self._run("scan", self._store.partitions)
        for (event_type, day), state in partitions.items():
            if state.bytes >= self.roll_bytes or now_s - state.oldest_s >= self.roll_interval_s:
                await self._run(f"roll of {event_type}/{day}", self._store.roll, event_type, day)
        if now_s >= self._next_compaction_s:
            self._next_compaction_s = now_s + self.compact_interval_s
            await self._run("compaction", self.compact)

    def compact(self) -> int:
        """Merge the small files of each partition; returns how many files were merged.

        A folder that is no partition this sink wrote (`date=garbage`), or whose files
        DuckDB cannot read, is skipped with one warning per process, never a crash: the
        lake may hold what other tools or an operator left there."""
        today = datetime.now(UTC).date()
        merged = 0
        for folder in sorted(self.root.glob("type=*/date=*")):
            try:
                day = date.fromisoformat(folder.name.removeprefix("date="))
                if not folder.is_dir() or not SAFE_TYPE.match(
                        folder.parent.name.removeprefix("type=")):
                    raise ValueError("not a partition folder this sink writes")
                small = [path for path in sorted(folder.glob("*.parquet"))
                         if path.stat().st_size < self.small_file_bytes]
                if len(small) >= self.compact_min_files or (day < today and len(small) >= 2):
                    self._store.compact(folder, small)
                    merged += len(small)
            except (ValueError, duckdb.Error, OSError) as error:
                if folder not in self._skipped:
                    self._skipped.add(folder)
                    logger.warning("lake compaction skips %s: %s: %s", folder,
                                   type(error).__name__, error)
        return merged

    async def close(self) -> None:
        try:
            await self._run("close", self._store.close)
        except SinkError as error:
            logger.warning("lake close: %s", error)
        self._executor.shutdown(wait=True)


def _to_columns(batch: list[SinkRecord]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in STAGED_COLUMNS}
    for record in batch:
        for name, value in _row(record).items():
            columns[name].append(value)
    return columns


def _row(record: SinkRecord) -> dict[str, Any]:
    event = record.event
    if not SAFE_TYPE.match(event.type):
        raise PoisonRecordError(f"event {event.event_id} has an unusable type {event.type!r}")
    received_at = utc(event.received_at)
    row: dict[str, Any] = dict.fromkeys(STAGED_COLUMNS)
    row.update(
        type=event.type, date=received_at.date(), event_id=event.event_id,
        account=event.account, contact=event.contact_number,
        occurred_at=utc(event.occurred_at), received_at=received_at,
        schema_version=event.schema_version,
    )
    if isinstance(event, NoticeEvent):
        raw = orjson.dumps(event.raw)
        row.update(format=event.format, business_number=event.business_number,
                   content=orjson.dumps(event.content.model_dump(mode="json")).decode(),
                   phone_number_id=event.phone_number_id,
                   business_account_id=event.business_account_id, **notice_columns(event))
    elif isinstance(event, OptOutEvent):
        row.update(contact_name=event.contact_name, message_id=event.message_id,
                   contact_user_id=event.contact_user_id)
        raw = event.to_json()
        row.update(kind="optout", text=event.text,
                   content=orjson.dumps({"matched": event.matched}).decode())
    else:
        raw = orjson.dumps(event.raw)
        content = event.content
        row.update(contact_name=event.contact_name, message_id=event.message_id,
                   kind=event.kind, format=event.format, business_number=event.business_number,
                   content=orjson.dumps(content.model_dump(mode="json")).decode())
        if event.context is not None:
            row["context_message_id"] = event.context.message_id
        if event.referral is not None:
            row.update(referral_source_id=event.referral.source_id,
                       ctwa_clid=event.referral.ctwa_clid)
        row.update(phone_number_id=event.phone_number_id,
                   business_account_id=event.business_account_id,
                   contact_user_id=event.contact_user_id,
                   group_id=event.group.id if event.group is not None else None)
        if isinstance(content, EditContent | RevokeContent):
            row["original_message_id"] = content.original_message_id
        if isinstance(content, StatusContent):
            row.update(status=content.status, error_code=content.error_code,
                       error_title=content.error_title, sent_at=utc(content.sent_at),
                       delivered_at=utc(content.delivered_at), read_at=utc(content.read_at))
        else:
            flat = message_fields(content)
            row.update(text=flat.text, media_url=flat.media_url, mime_type=flat.mime_type,
                       caption=flat.caption)
    row["raw"] = raw.decode()
    row["bytes"] = len(raw) + len(row["content"]) + len(row["text"] or "")
    return row
