"""Trace: every place one webhook went, from its receipt id or the message id it carried.

For a receipt id: the raw record (found by time, see raw_records.py), what today's parser
makes of it, each event's record in its per-type topic (in the partition of its key), any
dead letter or `unknown` record with that receipt id, the PostgreSQL rows, and the lake
file. For a message id: its PostgreSQL rows lead to its events' records, whose receipt
ids are traced in turn. Each Kafka search reads at most `scan_limit` records of a window
of `window_s` after the receipt; the trace says what it read where it found nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from ingest.record import RECEIPT_ID, RawRecord
from qikflow.operations import _kafka, _quarantine
from qikflow.operations.database import Database
from qikflow.operations.dead_letters import DeadLetter
from qikflow.operations.errors import DatabaseUnavailableError, OperationError, UnknownIdError
from qikflow.operations.pipeline import Pipeline
from qikflow.operations.raw_records import (
    CLOCK_SKEW_MS,
    find_raw,
    receipt_time_ms,
    search,
)
from qikflow.operations.records import ShownBody, show_body, shown_headers
from streams import headers as names
from streams._keyed import partition_for
from streams.events import Event
from streams.headers import header
from streams.notices import NoticeEvent
from streams.parsers import Parsed, Undecodable, Unrecognised, parse_raw


@dataclass
class Placement:
    """One Kafka record made from the webhook."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    headers: list[tuple[str, str]]
    body: ShownBody

    @classmethod
    def of(cls, record: ConsumerRecord) -> Placement:
        return cls(record.topic, record.partition, record.offset, _kafka.record_time(record),
                   record.key, shown_headers(record.headers or ()), show_body(record.value))

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass
class EventTrace:
    event_id: str
    event_type: str
    message_id: str
    topic: str
    record: Placement | None = None
    rows: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    lake_file: str | None = None
    problems: list[str] = field(default_factory=list)  # stores that could not be read


@dataclass
class ReceiptTrace:
    receipt_id: str
    raw: Placement | None = None
    outcome: str = ""
    events: list[EventTrace] = field(default_factory=list)
    dead_letters: list[Placement] = field(default_factory=list)
    quarantined: DeadLetter | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Trace:
    query: str
    receipts: list[ReceiptTrace] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether the webhook was found anywhere (its raw record, or the quarantine)."""
        return any(r.raw is not None or r.quarantined is not None for r in self.receipts)


class _Tracer:
    def __init__(self, pipeline: Pipeline, db: Database, consumer: AIOKafkaConsumer,
                 window_s: int, scan_limit: int) -> None:
        self.pipeline = pipeline
        self.topics = pipeline.topics
        self.db = db
        self.consumer = consumer
        self.window_ms = window_s * 1000
        self.window_s = window_s
        self.scan_limit = scan_limit

    async def receipt(self, receipt_id: str) -> ReceiptTrace:
        traced = ReceiptTrace(receipt_id)
        found, searched = await find_raw(self.consumer, self.topics.raw, {receipt_id},
                                         window_s=self.window_s, limit=self.scan_limit)
        record = found.get(receipt_id)
        if record is None:
            traced.notes.append(f"no raw record: {searched.describe()}")
            traced.quarantined = next(iter(_quarantine.picked(self.pipeline, [receipt_id])),
                                      None)
            if traced.quarantined is None:
                traced.notes.append("not in the quarantine either; if the ingest answered 200 "
                                    "it may still wait in its spool (`qikflow spool status`)")
            return traced
        traced.raw = Placement.of(record)
        since_ms = traced.raw.timestamp_ms - CLOCK_SKEW_MS
        outcome = parse_raw(RawRecord.from_kafka(record.value, list(record.headers or ())))
        if isinstance(outcome, Parsed):
            routed: list[Event | NoticeEvent] = [*outcome.events, *outcome.notices]
            count = len(routed)
            traced.outcome = f"makes {count} event{'s' if count > 1 else ''} of it"
            for event in routed:
                traced.events.append(await self.event(event, since_ms))
        elif isinstance(outcome, Unrecognised):
            traced.outcome = f"sends it to {self.topics.unknown}: {outcome.reason}"
        elif isinstance(outcome, Undecodable):
            traced.outcome = f"sends it to {self.topics.dlq}: {outcome.error}"
        for topic in (self.topics.unknown, self.topics.dlq, self.topics.sink_dlq):
            letters = await search(
                self.consumer, topic, since_ms, since_ms + self.window_ms,
                lambda one: header(one.headers or (), RECEIPT_ID) == receipt_id,
                limit=self.scan_limit)
            traced.dead_letters += [Placement.of(one) for one in letters.found]
        return traced

    async def event(self, event: Event | NoticeEvent, since_ms: int) -> EventTrace:
        topic = self.topics.event(event.type)
        message_id = event.message_id if isinstance(event, Event) else ""
        traced = EventTrace(event.event_id, event.type, message_id, topic)
        count = len(await _kafka.partitions(self.consumer, topic))
        if count:
            found = await search(
                self.consumer, topic, since_ms, since_ms + self.window_ms,
                lambda one: header(one.headers or (), names.EVENT_ID) == event.event_id,
                partitions=[partition_for(event.key, count)], want=1, limit=self.scan_limit)
            traced.record = Placement.of(found.found[0]) if found.found else None
        try:
            traced.rows = await self.rows(event)
        except DatabaseUnavailableError as error:
            traced.problems.append(str(error))
        try:
            traced.lake_file = await asyncio.to_thread(lake_file, self.pipeline.lake_dir, event)
        except (duckdb.Error, OSError) as error:
            traced.problems.append(f"lake {self.pipeline.lake_dir}: {error}")
        return traced

    async def rows(self, event: Event | NoticeEvent) -> list[tuple[str, dict[str, object]]]:
        if isinstance(event, NoticeEvent):
            return [(table, dict(row)) for table in ("notices", "template_events")
                    for row in await self.db.fetch(
                        f"SELECT * FROM {table} WHERE event_id = $1", event.event_id)]
        queries: list[tuple[str, str, tuple[str, ...]]]
        if event.kind == "message":
            queries = [("inbound_messages",
                        "SELECT * FROM inbound_messages WHERE message_id = $1", ())]
        else:
            status = event.type.removeprefix("status.")
            queries = [("message_status_events", "SELECT * FROM message_status_events "
                        "WHERE message_id = $1 AND status = $2", (status,)),
                       ("outbound_messages",
                        "SELECT * FROM outbound_messages WHERE message_id = $1", ())]
        rows = []
        for table, sql, extra in queries:
            rows += [(table, dict(row)) for row in await self.db.fetch(sql, event.message_id,
                                                                        *extra)]
        return rows

    async def message(self, message_id: str) -> list[str]:
        """The receipt ids of the records of `message_id`'s events, found via its rows."""
        rows = await self.db.fetch(
            "SELECT event_id, 'message.' || type AS type, coalesce(contact, message_id) AS key,"
            " received_at FROM inbound_messages WHERE message_id = $1 UNION ALL "
            "SELECT event_id, 'status.' || status, message_id, received_at "
            "FROM message_status_events WHERE message_id = $1", message_id)
        receipts: list[str] = []
        for row in rows:
            topic = self.topics.event(row["type"])
            count = len(await _kafka.partitions(self.consumer, topic))
            if not count:
                continue
            since_ms = int(row["received_at"].timestamp() * 1000) - CLOCK_SKEW_MS
            event_id: str = row["event_id"]

            def of_event(one: ConsumerRecord, event_id: str = event_id) -> bool:
                return header(one.headers or (), names.EVENT_ID) == event_id

            found = await search(
                self.consumer, topic, since_ms, since_ms + self.window_ms, of_event,
                partitions=[partition_for(row["key"].encode(), count)], want=1,
                limit=self.scan_limit)
            for record in found.found:
                receipts += [r for r in Event.from_json(record.value).receipt_ids
                             if r not in receipts]
        if not rows:
            raise UnknownIdError(
                f"{message_id!r} is neither a receipt id nor a message id PostgreSQL knows; "
                "trace the receipt id the ingest answered with instead")
        return receipts


def lake_file(lake_dir: Path, event: Event | NoticeEvent) -> str | None:
    """The Parquet file (relative to the lake) that holds `event`, or None."""
    folder = lake_dir / f"type={event.type}" / f"date={event.received_at.date().isoformat()}"
    if not any(folder.glob("*.parquet")):
        return None
    with duckdb.connect() as connection:
        row = connection.execute(
            "SELECT filename FROM read_parquet(?, filename = true, hive_partitioning = false) "
            "WHERE event_id = ? LIMIT 1", [str(folder / "*.parquet"), event.event_id],
        ).fetchone()
    return str(Path(row[0]).relative_to(lake_dir)) if row else None


async def trace(pipeline: Pipeline, db: Database, ident: str, *, window_s: int,
                scan_limit: int) -> Trace:
    """Trace a receipt id or a message id; UnknownIdError when neither is known."""
    ident = ident.strip()
    result = Trace(ident)
    async with _kafka.reader(pipeline.kafka) as consumer:
        tracer = _Tracer(pipeline, db, consumer, window_s, scan_limit)
        if _is_uuid(ident):
            receipt_time_ms(ident)  # a UUID that is no receipt id is a BadInputError
            receipts = [ident]
        else:
            receipts = await tracer.message(ident)
            if not receipts:
                result.notes.append(f"PostgreSQL has rows of {ident}, but no record of its "
                                    "events was found in its per-type topics (retention?)")
        for receipt in receipts:
            try:
                result.receipts.append(await tracer.receipt(receipt))
            except OperationError as error:
                result.notes.append(f"{receipt}: {error}")
    return result


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def message_ids(pipeline: Pipeline, receipt_id: str, *, window_s: int,
                      scan_limit: int) -> list[str]:
    """The message ids in the raw record of `receipt_id`, as today's parser reads it."""
    receipt_time_ms(receipt_id)  # a BadInputError before any connection
    async with _kafka.reader(pipeline.kafka) as consumer:
        found, searched = await find_raw(consumer, pipeline.topics.raw, {receipt_id},
                                         window_s=window_s, limit=scan_limit)
    record = found.get(receipt_id)
    if record is None:
        raise UnknownIdError(f"no raw record of receipt {receipt_id}: {searched.describe()}")
    outcome = parse_raw(RawRecord.from_kafka(record.value, list(record.headers or ())))
    if not isinstance(outcome, Parsed):
        return []
    return list(dict.fromkeys(event.message_id for event in outcome.events))
