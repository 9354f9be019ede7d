"""Fault drills: simulated Qikchat load through the whole pipeline, a fault in the middle,
then a reconciliation against the simulator's ground truth that must show zero loss.

Drills that stop Kafka or PostgreSQL run the pipeline on a broker or server of their own,
so the shared test services stay up for the other tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from qikflow.local.kafka import LocalKafka
from qikflow.local.postgres import LocalPostgres
from tests._ports import broker_port, free_port
from tests.e2e._drill import OUTAGE_S, Fault, drill
from tests.e2e._pipeline import Pipeline


@pytest.fixture
async def pipeline(kafka_bootstrap: str, database_url: str, tmp_path: Path
                   ) -> AsyncIterator[Pipeline]:
    running = Pipeline(kafka_bootstrap, database_url, tmp_path)
    await running.start()
    yield running
    await running.stop()


def killer(name: str) -> Fault:
    async def kill(pipeline: Pipeline) -> None:
        pipeline.kill(name)
    return kill


@pytest.mark.parametrize(
    ("process", "seed"),
    [("ingest-0", 101), ("worker", 102), ("sink-postgres", 103), ("sink-lake", 104)],
)
async def test_sigkill_loses_nothing(pipeline: Pipeline, process: str, seed: int) -> None:
    await drill(pipeline, killer(process), seed=seed,
                answers_may_be_lost=process.startswith("ingest"),
                worker_crashes=process == "worker")


async def test_two_ingest_replicas_behind_the_proxy_one_killed(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """Caddy (Debian's package, the project's deploy/Caddyfile) in front of two replicas;
    one SIGKILLed: the requests it had taken get a 502, the proxy sends the rest to the
    other replica, and every 200 is in Kafka and everywhere after it."""
    pipeline = Pipeline(kafka_bootstrap, database_url, tmp_path, ingest_replicas=2)
    await pipeline.start()
    try:
        report = await drill(pipeline, killer("ingest-1"), seed=202, answers_may_be_lost=True,
                             name="2 ingest replicas behind Caddy, one SIGKILLed")
    finally:
        await pipeline.stop()
    # Only what the killed replica held in flight went unanswered (32 at most at once).
    assert sum(n for code, n in report.status_counts().items() if code != 200) <= 32


async def test_kafka_stopped_for_20_seconds(database_url: str, tmp_path: Path) -> None:
    # A name of its own: two runs of the drills at once must not share a data folder.
    broker = LocalKafka(home=Path(".qikflow"), name=f"drill-{uuid.uuid4().hex[:8]}",
                        port=broker_port())
    broker.start()
    pipeline = Pipeline(broker.bootstrap, database_url, tmp_path)
    try:
        await pipeline.start()

        async def outage(_: Pipeline) -> None:
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(OUTAGE_S)
            await asyncio.to_thread(broker.start)

        await drill(pipeline, outage, seed=303, worker_crashes=True)
    finally:
        await pipeline.stop()
        broker.wipe()


async def test_postgres_stopped_for_20_seconds(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Under .qikflow, not tmp_path: as root the server runs as its own user, which may not
    # enter pytest's private temporary folders.
    server = LocalPostgres(home=Path(".qikflow"), name=f"pg-drill-{uuid.uuid4().hex[:8]}",
                           port=free_port())
    server.start()
    connection = await asyncpg.connect(server.url())
    await connection.execute("CREATE DATABASE drill")
    await connection.close()
    pipeline = Pipeline(kafka_bootstrap, server.url("drill"), tmp_path)
    try:
        await pipeline.start()

        async def outage(_: Pipeline) -> None:
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(OUTAGE_S)
            await asyncio.to_thread(server.start)

        await drill(pipeline, outage, seed=404)
    finally:
        await pipeline.stop()
        server.wipe()
