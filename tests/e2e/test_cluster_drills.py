"""Fault drills on a three-node Kafka cluster (replication 3, min.insync.replicas 2): the
faults of production, where one broker dies, hangs or restarts and the others carry on.

Each runs the whole pipeline under simulated load and requires a clean reconciliation
(`_drill.py`); the cluster is brought back to three running, in-sync nodes afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from qikflow.local._process import wait_for_exit
from qikflow.local.kafka import LocalKafka
from qikflow.local.kafka_cluster import LocalKafkaCluster
from tests.e2e._drill import drill, soak_s
from tests.e2e._pipeline import Pipeline

HANG_S = 15.0
IN_SYNC_WITHIN_S = 120.0


async def _describe(cluster: LocalKafkaCluster, prefix: str) -> list[dict[str, Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        described: list[dict[str, Any]] = await admin.describe_topics(names)
        return described
    finally:
        await admin.close()


async def leader_of_most(cluster: LocalKafkaCluster, topic: str) -> LocalKafka:
    """The node that leads most partitions of `topic`."""
    (described,) = [t for t in await _describe(cluster, topic.rsplit(".", 1)[0])
                    if t["topic"] == topic]
    leaders = Counter(partition["leader"] for partition in described["partitions"])
    node_id, _ = leaders.most_common(1)[0]
    return cluster.nodes[int(node_id) - 1]


async def in_sync(cluster: LocalKafkaCluster, prefix: str) -> None:
    """Wait until every partition of the prefix's topics has all its replicas in sync."""
    deadline = asyncio.get_running_loop().time() + IN_SYNC_WITHIN_S
    while True:
        lagging = [f"{t['topic']}/{p['partition']}" for t in await _describe(cluster, prefix)
                   for p in t["partitions"] if len(p["isr"]) < len(p["replicas"])]
        if not lagging:
            return
        assert asyncio.get_running_loop().time() < deadline, f"not in sync: {lagging[:5]}"
        await asyncio.sleep(0.5)


def kill(node: LocalKafka) -> None:
    pid = node.pid()
    assert pid is not None, f"{node.name} is not running"
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid, 10)


@pytest.fixture
async def on_cluster(kafka_cluster: LocalKafkaCluster, database_url: str, tmp_path: Path
                     ) -> AsyncIterator[Pipeline]:
    pipeline = Pipeline(kafka_cluster.bootstrap, database_url, tmp_path)
    await pipeline.start()
    try:
        yield pipeline
    finally:
        await pipeline.stop()
        await asyncio.to_thread(kafka_cluster.start)  # whatever a drill left stopped


async def test_the_broker_leading_most_raw_partitions_killed(
    kafka_cluster: LocalKafkaCluster, on_cluster: Pipeline
) -> None:
    """Another replica takes over each partition it led; the ingest's acks=all producer
    (or its spool, while the election runs) answers every webhook with 200."""
    async def kill_leader(pipeline: Pipeline) -> None:
        kill(await leader_of_most(kafka_cluster, f"{pipeline.prefix}.raw"))

    report = await drill(on_cluster, kill_leader, seed=501, worker_crashes=True,
                         name="leader of most raw partitions SIGKILLed")
    assert set(report.status_counts()) == {200}


async def test_a_broker_hung_then_resumed(
    kafka_cluster: LocalKafkaCluster, on_cluster: Pipeline
) -> None:
    """SIGSTOP: the broker holds its connections open and answers nothing, the fault a dead
    process does not show; its partitions move once its session expires."""
    async def hang(pipeline: Pipeline) -> None:
        node = await leader_of_most(kafka_cluster, f"{pipeline.prefix}.raw")
        pid = node.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(soak_s(HANG_S, 30.0))
        finally:
            os.kill(pid, signal.SIGCONT)

    report = await drill(on_cluster, hang, seed=502, worker_crashes=True,
                         name=f"leader of most raw partitions hung {soak_s(HANG_S, 30.0):g} s")
    assert set(report.status_counts()) == {200}


@pytest.mark.soak  # 80 s and more: `make drill` runs it
async def test_a_rolling_restart_of_every_broker(
    kafka_cluster: LocalKafkaCluster, on_cluster: Pipeline
) -> None:
    """As in an upgrade: each node stopped (SIGTERM), started, and in sync again before the
    next; the load runs through all three."""
    async def roll(pipeline: Pipeline) -> None:
        for node in kafka_cluster.nodes:
            await asyncio.to_thread(node.stop)
            await asyncio.to_thread(kafka_cluster.start)
            await in_sync(kafka_cluster, pipeline.prefix)

    report = await drill(on_cluster, roll, seed=503, worker_crashes=True, duration_s=120.0,
                         name="rolling restart of 3 brokers")
    assert set(report.status_counts()) == {200}


async def test_three_workers_one_killed(
    kafka_cluster: LocalKafkaCluster, database_url: str, tmp_path: Path
) -> None:
    """Three workers share the partitions; one SIGKILLed, the other two take its share
    until it is back."""
    pipeline = Pipeline(kafka_cluster.bootstrap, database_url, tmp_path, workers=3)
    await pipeline.start()
    try:
        async def kill_worker(running: Pipeline) -> None:
            running.kill("worker-1")

        await drill(pipeline, kill_worker, seed=504, worker_crashes=True,
                    name="3 workers, one SIGKILLed")
    finally:
        await pipeline.stop()
