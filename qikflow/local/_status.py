"""Live counts per pipeline stage for `qikflow up`: topics, consumer lag, rows, lake files."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from qikflow.config import KafkaSettings
from qikflow.topics import Topics
from streams.topics import event_topics

logger = logging.getLogger(__name__)

PG_TABLES = ("inbound_messages", "message_status_events", "outbound_messages", "contact_optouts")


@dataclass
class Snapshot:
    """What each stage holds right now; None where a stage could not be read."""

    topics: dict[str, int] = field(default_factory=dict)  # topic -> records (end offsets)
    lag: dict[str, int] = field(default_factory=dict)  # consumer group -> records behind
    rows: dict[str, int] | None = None
    lake_files: int | None = None
    errors: list[str] = field(default_factory=list)

    def total(self, prefix: str) -> int:
        return sum(n for topic, n in self.topics.items() if topic.startswith(prefix))


async def take_snapshot(kafka: KafkaSettings, groups: list[str], database_url: str | None,
                        lake_dir: Path) -> Snapshot:
    snapshot = Snapshot()
    try:
        await asyncio.wait_for(_kafka_counts(kafka, groups, snapshot), 5)
    except (KafkaError, OSError, TimeoutError) as error:
        snapshot.errors.append(f"Kafka: {error!r}")
    if database_url:
        try:
            snapshot.rows = await asyncio.wait_for(_row_counts(database_url), 5)
        except (OSError, TimeoutError) as error:
            snapshot.errors.append(f"PostgreSQL: {error!r}")
        except Exception as error:  # noqa: BLE001 - any driver error is shown, never fatal here
            snapshot.errors.append(f"PostgreSQL: {type(error).__name__}: {error}")
    snapshot.lake_files = sum(1 for _ in lake_dir.rglob("*.parquet")) if lake_dir.exists() else 0
    return snapshot


async def _kafka_counts(kafka: KafkaSettings, groups: list[str], snapshot: Snapshot) -> None:
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await consumer.start()
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(kafka.topic_prefix + ".")]
        described = await admin.describe_topics(names) if names else []
        partitions = [TopicPartition(topic["topic"], partition["partition"])
                      for topic in described for partition in topic["partitions"]]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        starts = await consumer.beginning_offsets(partitions) if partitions else {}
        for tp, end in ends.items():
            snapshot.topics[tp.topic] = snapshot.topics.get(tp.topic, 0) + end
        inputs = group_inputs(Topics.from_settings(kafka))
        for group in groups:
            committed = {tp: meta.offset for tp, meta in
                         (await admin.list_consumer_group_offsets(group)).items()}
            snapshot.lag[group] = lag(ends, starts, committed, inputs.get(group, set()))
    finally:
        await admin.close()
        await consumer.stop()


def group_inputs(topics: Topics) -> dict[str, set[str]]:
    """The topics each group of the pipeline reads (the agents' inputs aside)."""
    events = {*event_topics(topics), topics.optout}
    return {
        topics.router_group: {topics.raw},
        topics.streams_group: {topics.keyed},
        topics.sink_group("postgres"): events,
        topics.sink_group("lake"): events,
    }


def lag(ends: dict[TopicPartition, int], starts: dict[TopicPartition, int],
        committed: dict[TopicPartition, int], inputs: set[str]) -> int:
    """Records a group has still to read: from its committed offset, or from the start of
    the log where it has committed none yet (a group that never committed is behind by
    everything, not by nothing)."""
    behind = 0
    for tp, end in ends.items():
        offset = committed.get(tp, -1)
        if offset < 0:
            if tp.topic not in inputs:
                continue
            offset = starts.get(tp, 0)
        behind += max(0, end - offset)
    return behind


async def _row_counts(database_url: str) -> dict[str, int]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        counts: dict[str, int] = {}
        for table in PG_TABLES:
            exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
            counts[table] = int(await connection.fetchval(f"SELECT count(*) FROM {table}")
                                if exists else 0)
        return counts
    finally:
        await connection.close()


def render(snapshot: Snapshot, prefix: str, header: list[str], children: list[str]) -> str:
    """The status panel: endpoints and processes first, then counts per stage."""
    raw = snapshot.topics.get(f"{prefix}.raw", 0)
    routed = snapshot.total(f"{prefix}.message.") + snapshot.total(f"{prefix}.status.")
    lines = [*header, "", "processes:", *[f"  {line}" for line in children], "", "stages:"]
    lines.append(f"  {prefix}.raw               {raw:>10}  records")
    lines.append(f"  routed (message.*, status.*) {routed:>6}  events")
    for suffix in ("contact.optout", "unknown", "dlq", "sink.dlq"):
        lines.append(f"  {prefix}.{suffix:<16} {snapshot.topics.get(f'{prefix}.{suffix}', 0):>6}")
    for group, lag in snapshot.lag.items():
        lines.append(f"  lag of {group:<22} {lag:>6}")
    if snapshot.rows is not None:
        for table, count in snapshot.rows.items():
            lines.append(f"  postgres {table:<22} {count:>6} rows")
    lines.append(f"  lake parquet files {snapshot.lake_files or 0:>15}")
    lines += [f"  ! {error}" for error in snapshot.errors]
    return "\n".join(lines)
