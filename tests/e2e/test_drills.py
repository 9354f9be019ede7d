"""Fault drills: simulated Qikchat load through the whole pipeline, a fault in the middle,
then a reconciliation against the simulator's ground truth that must show zero loss.

Drills that stop Kafka or PostgreSQL run the pipeline on a broker or server of their own,
so the shared test services stay up for the other tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from qikflow.local.kafka import LocalKafka
from qikflow.local.postgres import LocalPostgres
from tests._ports import broker_port, free_port
from tests.e2e._pipeline import Pipeline, traffic

RATE_PER_S = 30
DURATION_S = 12
FAULT_AFTER_S = 4
OUTAGE_S = 20

Fault = Callable[[Pipeline], Awaitable[None]]


async def drill(pipeline: Pipeline, fault: Fault, seed: int, *,
                answers_may_be_lost: bool = False, worker_crashes: bool = False) -> None:
    """Send load, inject the fault mid-way, then require a clean reconciliation.

    `answers_may_be_lost`: the only ingest is killed, so requests sent while it restarts
    get no answer (Qikchat would count them as failed); everything acknowledged must
    still arrive everywhere, and no request may get an error status.
    `worker_crashes`: the router worker dies (or loses Kafka) mid-stream; it re-routes what
    it had not committed, so routed copies (same event_id) are reported but allowed. The
    database must still hold every event exactly once.
    """
    webhooks, truth = traffic(seed, RATE_PER_S, DURATION_S)

    async def inject() -> None:
        await asyncio.sleep(FAULT_AFTER_S)
        await fault(pipeline)

    report, _ = await asyncio.gather(pipeline.send(webhooks), inject())
    report = await pipeline.settle_unanswered(report, truth, webhooks)
    assert report.acked(), "no webhook was accepted at all"
    result = await pipeline.reconcile(truth, report, worker_crashed=worker_crashes)
    if answers_may_be_lost:
        assert set(report.status_counts()) <= {200, 0}, report.status_counts()
        rows = [row for row in result.rows if row.stage != "acked (200)"]
    else:
        rows = result.rows
    assert all(row.ok for row in rows), f"\n{result.table()}\nlogs: {pipeline.root / 'logs'}"


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


async def test_two_ingest_replicas_one_killed(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    pipeline = Pipeline(kafka_bootstrap, database_url, tmp_path, ingest_replicas=2)
    await pipeline.start()
    try:
        await drill(pipeline, killer("ingest-1"), seed=202)
    finally:
        await pipeline.stop()


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
