"""The pipeline's one rule past the ingest, as a property over a real worker and both real
sinks at their default limits: any body up to the limit ends in exactly one outcome at the
worker (its events, `unknown` or `dlq`), every routed event in exactly one outcome at each
sink (a PostgreSQL row or a lake row, else a `sink.dlq` letter naming that sink), and a
normal text sent next reaches its topic, PostgreSQL and the lake.

The worker and the sinks run once for this module; each example sends a few bodies. The lake
sink rolls staged events to Parquet every second here (`QIKFLOW_LAKE_ROLL_INTERVAL_S=1`; the
default, 300 s, is tested in tests/sinks/test_lake.py), so a row can be looked for at once.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import duckdb
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qikflow.local.databases import create_database, drop_database
from qikflow.topics import Topics
from sinks._pg_rows import NUL, NUL_STAND_IN
from streams.headers import FAILED_SINK, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC, header
from tests.fixtures.kafka import delete_topics
from tests.sinks.harness import start_sink_process, stop_process
from tests.streams._outcomes import (
    BUDGET,
    Outcome,
    OutcomeReader,
    check_outcome,
    read_routed,
)
from tests.streams._worker import WorkerCluster, text_body
from tests.streams.fixtures.strategies import hostile_bodies

SINKS = ("postgres", "lake")
LANDED_WITHIN_S = 90.0


@dataclass
class SinkOutcomes:
    """Where each sink put the events it read: rows, and the letters of `sink.dlq`."""

    topics: Topics
    database_url: str
    lake_dir: Path
    letters: list[ConsumerRecord] = field(default_factory=list)

    async def postgres_rows(self, event_ids: list[str]) -> set[str]:
        # PostgreSQL keeps a NUL as U+2400 (docs/sinks.md): look for ids as stored.
        stored = {event_id.replace(NUL, NUL_STAND_IN): event_id for event_id in event_ids}
        connection = await asyncpg.connect(self.database_url)
        try:
            rows = await connection.fetch(
                "SELECT event_id FROM inbound_messages WHERE event_id = ANY($1::text[]) "
                "UNION ALL SELECT event_id FROM message_status_events "
                "WHERE event_id = ANY($1::text[]) "
                "UNION ALL SELECT event_id FROM notices WHERE event_id = ANY($1::text[])",
                list(stored))
        finally:
            await connection.close()
        found = [row["event_id"] for row in rows]
        assert len(found) == len(set(found)), f"an event has two rows: {found}"
        return {stored[event_id] for event_id in found}

    def lake_rows(self, event_ids: list[str]) -> set[str]:
        if not any(self.lake_dir.rglob("*.parquet")):
            return set()
        with duckdb.connect() as db:
            rows = db.execute(
                "SELECT DISTINCT event_id FROM read_parquet(?, hive_partitioning = true, "
                "union_by_name = true) WHERE list_contains(?, event_id)",
                [str(self.lake_dir / "**" / "*.parquet"), event_ids]).fetchall()
        return {row[0] for row in rows}

    def dead_lettered(self, sink: str, record: ConsumerRecord) -> bool:
        """Whether `sink` set the event record aside, naming where it was read."""
        return any(
            header(letter.headers, FAILED_SINK) == sink
            and header(letter.headers, SOURCE_TOPIC) == record.topic
            and header(letter.headers, SOURCE_PARTITION) == str(record.partition)
            and header(letter.headers, SOURCE_OFFSET) == str(record.offset)
            for letter in self.letters)


@dataclass
class LivePipeline:
    """One worker and both sinks, running for the module, with readers of their outcomes."""

    topics: Topics
    reader: OutcomeReader
    sinks: SinkOutcomes
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path
    _letters: AIOKafkaConsumer | None = None

    def send(self, bodies: list[bytes]) -> list[Outcome]:
        """Each body's worker outcome, once every sink has given each routed event its own."""
        outcomes = self.reader.send(bodies)
        events = [record for outcome in outcomes for record in outcome.records
                  if record.topic not in (self.topics.unknown, self.topics.dlq)]
        self.reader._loop.run_until_complete(self._await_sinks(events))
        return outcomes

    async def _await_sinks(self, records: list[ConsumerRecord]) -> None:
        ids = [read_routed(record)[0] for record in records]
        deadline = time.monotonic() + LANDED_WITHIN_S
        while True:
            await self._read_letters()
            in_postgres = await self.sinks.postgres_rows(ids)
            in_lake = self.sinks.lake_rows(ids)
            missing = [
                (sink, record.topic, event_id)
                for record, event_id in zip(records, ids, strict=True)
                for sink, rows in (("postgres", in_postgres), ("lake", in_lake))
                if event_id not in rows and not self.sinks.dead_lettered(sink, record)]
            if not missing:
                break
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited: see {self.logs}"
            assert time.monotonic() < deadline, f"no outcome at a sink for {missing[:5]}"
            await asyncio.sleep(0.5)
        for record, event_id in zip(records, ids, strict=True):
            for sink, rows in (("postgres", in_postgres), ("lake", in_lake)):
                both = event_id in rows and self.sinks.dead_lettered(sink, record)
                assert not both, f"{sink} wrote {event_id} and dead-lettered it too"

    async def _read_letters(self) -> None:
        if self._letters is None:
            self._letters = AIOKafkaConsumer(self.topics.sink_dlq,
                                             bootstrap_servers=self.reader.bootstrap,
                                             group_id=None, auto_offset_reset="earliest")
            await self._letters.start()
        fetched = await self._letters.getmany(timeout_ms=200)
        for records in fetched.values():
            self.sinks.letters.extend(records)

    def close(self) -> None:
        if self._letters is not None:
            self.reader._loop.run_until_complete(self._letters.stop())


def wait_for_line(process: subprocess.Popen[bytes], log: Path, line: str) -> None:
    deadline = time.monotonic() + LANDED_WITHIN_S
    while line not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, postgres_admin_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePipeline]:
    topics = Topics(f"t{uuid.uuid4().hex[:10]}")
    home: Path = tmp_path_factory.mktemp("outcomes")
    name, url = asyncio.run(create_database(postgres_admin_url, "t"))
    cluster = WorkerCluster(kafka_bootstrap, topics.prefix, home)
    env = {**cluster.env(), "QIKFLOW_DATABASE_URL": url,
           "QIKFLOW_LAKE_DIR": str(home / "lake"), "QIKFLOW_LAKE_ROLL_INTERVAL_S": "1"}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    reader = OutcomeReader(kafka_bootstrap, topics)
    live = LivePipeline(topics, reader, SinkOutcomes(topics, url, home / "lake"), processes,
                        home)
    try:
        cluster.start()  # creates every topic the sinks read
        for sink in SINKS:
            processes[sink] = start_sink_process(sink, env, home / f"sink-{sink}.log")
        for sink in SINKS:  # migrated, its dead-letter topic made, reading
            wait_for_line(processes[sink], home / f"sink-{sink}.log",
                          f"{sink} sink consuming")
        yield live
    finally:
        try:
            live.close()
            reader.close()
        finally:
            for process in processes.values():
                stop_process(process)
            cluster.stop_all()
            asyncio.run(drop_database(postgres_admin_url, name))
            asyncio.run(delete_topics(kafka_bootstrap, topics.prefix))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(hostile_bodies(BUDGET.max_body_bytes), min_size=1, max_size=3))
def test_every_body_ends_in_one_outcome_at_the_worker_and_at_each_sink(
    pipeline: LivePipeline, bodies: list[bytes]
) -> None:
    normal_id = f"wamid.N{uuid.uuid4().hex}"
    *outcomes, normal = pipeline.send([*bodies, text_body(normal_id, "hi")])
    for outcome in outcomes:
        check_outcome(pipeline.topics, outcome)
    # The text sent after them reached its topic, and both sinks wrote it (not set aside).
    assert normal.topics() == {pipeline.topics.event("message.text")}, normal.records
    ids = [normal_id]
    loop = pipeline.reader._loop
    assert loop.run_until_complete(pipeline.sinks.postgres_rows(ids)) == {normal_id}
    assert pipeline.sinks.lake_rows(ids) == {normal_id}
