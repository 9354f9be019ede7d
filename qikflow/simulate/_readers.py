"""Read back what the pipeline stored: Kafka topics, PostgreSQL rows, lake Parquet files."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from qikflow._logging import ALWAYS
from qikflow.config import KafkaSettings
from qikflow.simulate.plan import OutboundState

logger = logging.getLogger(__name__)

# The lake's published files; staging files and `.parquet.tmp` files in flight are not.
LAKE_FILES = "type=*/date=*/*.parquet"


class KafkaReader:
    """Reads every topic whose name matches `pattern`, from `since_ms` on, incrementally.

    Partitions are assigned by hand (no consumer group, nothing committed), so reading
    never disturbs the pipeline's consumers. Each `poll` picks up topics created since the
    last one and reads up to the end offsets it saw when it began.
    """

    def __init__(self, kafka: KafkaSettings, pattern: str, since_ms: int | None) -> None:
        self.pattern = re.compile(pattern)
        self.since_ms = since_ms
        self._consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            **kafka.client_options(),
        )
        # The admin client lists topics and their partitions from fresh metadata; the
        # consumer's own metadata only covers topics it already reads.
        self._admin = AIOKafkaAdminClient(**kafka.client_options())
        self._assigned: set[TopicPartition] = set()
        self._unanswered: str | None = None  # the error while Kafka does not answer

    async def __aenter__(self) -> KafkaReader:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def _assign_new_topics(self) -> None:
        consumer = self._consumer
        names = [t for t in await self._admin.list_topics() if self.pattern.fullmatch(t)]
        # Re-describe every matching topic: one may have gained partitions.
        described = await self._admin.describe_topics(names) if names else []
        wanted = {TopicPartition(topic["topic"], partition["partition"])
                  for topic in described if topic["error_code"] == 0
                  for partition in topic["partitions"]}
        new = wanted - self._assigned
        if not new:
            return
        # assign() replaces the assignment and forgets positions: keep them across it.
        positions = {tp: await consumer.position(tp) for tp in self._assigned}
        self._assigned |= new
        consumer.assign(sorted(self._assigned))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        if self.since_ms is None:
            await consumer.seek_to_beginning(*new)
            return
        found = await consumer.offsets_for_times({tp: self.since_ms for tp in new})
        ends = await consumer.end_offsets(list(new))
        for tp in new:
            at = found.get(tp)
            consumer.seek(tp, at.offset if at is not None else ends[tp])

    async def poll(self, deadline: float) -> list[ConsumerRecord]:
        """Records appended since the last poll, up to the end offsets seen now.

        A broker that is down or electing leaders (a retriable error) ends the poll with
        what was read so far; the next poll goes on from there. One line says when Kafka
        stops answering, one when it answers again."""
        records: list[ConsumerRecord] = []
        try:
            await self._read(deadline, records)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            if self._unanswered is None:
                logger.warning("verify: Kafka did not answer (%s: %s); reading again",
                               type(exc).__name__, exc, extra=ALWAYS)
            self._unanswered = type(exc).__name__
            return records
        if self._unanswered is not None:
            logger.warning("verify: Kafka answers again (after %s)", self._unanswered,
                           extra=ALWAYS)
            self._unanswered = None
        return records

    async def _read(self, deadline: float, records: list[ConsumerRecord]) -> None:
        await self._assign_new_topics()
        if not self._assigned:
            return
        consumer = self._consumer
        ends = await consumer.end_offsets(sorted(self._assigned))
        while time.monotonic() < deadline:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                break
            batch = await consumer.getmany(*behind, timeout_ms=500, max_records=20_000)
            for partition_records in batch.values():
                records.extend(partition_records)


def header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return None


class DatabaseRows:
    """What PostgreSQL holds for the simulated ids (count per key; outbound final state)."""

    def __init__(self) -> None:
        self.inbound: Counter[str] = Counter()
        self.status_events: Counter[tuple[str, str]] = Counter()
        self.outbound: dict[str, OutboundState] = {}
        self.notices: Counter[str] = Counter()
        self.problems: list[str] = []


async def read_database(
    url: str, inbound_ids: Sequence[str], outbound_ids: Sequence[str],
    status_ids: Sequence[str] | None = None, notice_ids: Sequence[str] = (),
) -> DatabaseRows:
    """Rows of `inbound_messages`, `message_status_events` (of `status_ids`, by default
    `outbound_ids`), `outbound_messages` and `notices`."""
    import asyncpg

    rows = DatabaseRows()
    connection = await asyncpg.connect(url)
    try:
        queries: list[tuple[str, str, Sequence[str]]] = [
            ("inbound_messages", "SELECT message_id, count(*) FROM inbound_messages "
             "WHERE message_id = ANY($1::text[]) GROUP BY 1", inbound_ids),
            ("message_status_events", "SELECT message_id, status, count(*) FROM "
             "message_status_events WHERE message_id = ANY($1::text[]) GROUP BY 1, 2",
             outbound_ids if status_ids is None else status_ids),
            ("outbound_messages", "SELECT message_id, status, failed FROM outbound_messages "
             "WHERE message_id = ANY($1::text[])", outbound_ids),
            ("notices", "SELECT event_id, count(*) FROM notices "
             "WHERE event_id = ANY($1::text[]) GROUP BY 1", notice_ids),
        ]
        for table, query, ids in queries:
            try:
                records: list[Any] = await connection.fetch(query, list(ids))
            except asyncpg.PostgresError as error:
                rows.problems.append(f"{table}: {type(error).__name__}: {error}")
                continue
            for record in records:
                if table == "inbound_messages":
                    rows.inbound[record[0]] += record[1]
                elif table == "message_status_events":
                    rows.status_events[(record[0], record[1])] += record[2]
                elif table == "notices":
                    rows.notices[record[0]] += record[1]
                else:
                    # `status` reads `failed` when no sent/delivered/read arrived (rank 0).
                    status = None if record[1] in (None, "failed") else record[1]
                    rows.outbound[record[0]] = OutboundState(status, bool(record[2]))
    finally:
        await connection.close()
    return rows


def _read_lake(lake_dir: Path, event_ids: list[str]) -> dict[str, list[str]]:
    import duckdb

    pattern = str(lake_dir / LAKE_FILES).replace("'", "''")
    query = (f"SELECT event_id, type FROM read_parquet('{pattern}', hive_partitioning=true, "
             "union_by_name=true) WHERE event_id IN (SELECT unnest(?::VARCHAR[]))")
    found: dict[str, list[str]] = {}
    with duckdb.connect() as connection:
        for event_id, event_type in connection.execute(query, [event_ids]).fetchall():
            found.setdefault(event_id, []).append(event_type)
    return found


async def read_lake(lake_dir: Path, event_ids: Sequence[str]) -> tuple[dict[str, list[str]], str]:
    """Event id -> types found in the lake, and a note when it could not be read (yet)."""
    import duckdb

    if not any(lake_dir.glob(LAKE_FILES)):
        return {}, f"no Parquet files under {lake_dir}"
    try:
        return await asyncio.to_thread(_read_lake, lake_dir, list(event_ids)), ""
    except duckdb.Error as error:
        # A file being written or renamed mid-scan: the next poll reads it whole.
        logger.info("lake not readable yet: %s", error)
        return {}, f"unreadable: {error}"
