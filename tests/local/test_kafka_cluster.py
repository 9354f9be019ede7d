"""Tests of qikflow/local/kafka_cluster.py and the topic defaults a cluster gets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import (
    ensure_topics,
    resolve_cluster_defaults,
    specs_for,
    topic_configs,
)
from qikflow.local._process import wait_for_exit
from qikflow.local.kafka_cluster import LocalKafkaCluster

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))


def test_status_lists_every_node_and_the_quorum_leader(kafka_cluster: LocalKafkaCluster) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QIKFLOW_KAFKA_BOOTSTRAP"}
    result = subprocess.run(
        [QIKFLOW, "broker", "status", "--name", kafka_cluster.name,
         "--port", str(kafka_cluster.port)],
        capture_output=True, text=True, env=env, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for node in kafka_cluster.nodes:
        assert f"kafka {node.name}: ready on {node.bootstrap}" in result.stdout
    assert "quorum leader: node " in result.stdout
    assert kafka_cluster.quorum_leader() in (1, 2, 3)


async def test_topics_on_three_brokers_get_three_replicas_and_survive_one_loss(
    kafka_cluster: LocalKafkaCluster,
) -> None:
    kafka = KafkaSettings(bootstrap=kafka_cluster.bootstrap)
    resolved = await resolve_cluster_defaults(kafka)
    assert (resolved.topic_replication_factor, resolved.topic_min_insync_replicas) == (3, 2)
    name = f"c{uuid.uuid4().hex[:8]}.raw"
    assert await ensure_topics(kafka, specs_for(kafka, [name])) == [name]
    configs = await topic_configs(kafka, name)
    assert configs["min.insync.replicas"] == "2"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
    finally:
        await admin.close()
    assert {len(p["replicas"]) for p in described["partitions"]} == {3}

    # One broker killed: acks=all still succeeds with the two in-sync replicas left.
    victim = kafka_cluster.nodes[2]
    pid = victim.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid, 10)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_cluster.nodes[0].bootstrap,
                                    acks="all", enable_idempotence=True,
                                    request_timeout_ms=30_000)
        await producer.start()
        try:
            for n in range(20):
                await producer.send_and_wait(name, b"%d" % n)
        finally:
            await producer.stop()
    finally:
        kafka_cluster.start()  # brings the killed node back for the other tests
    assert kafka_cluster.running() == 3


def test_a_single_broker_gets_one_replica(kafka_bootstrap: str) -> None:
    import asyncio

    resolved = asyncio.run(resolve_cluster_defaults(KafkaSettings(bootstrap=kafka_bootstrap)))
    assert (resolved.topic_replication_factor, resolved.topic_min_insync_replicas) == (1, 1)


def test_the_nodes_persist_one_cluster_id(kafka_cluster: LocalKafkaCluster) -> None:
    ids = {node.cluster_id() for node in kafka_cluster.nodes}
    assert len(ids) == 1 and None not in ids
    assert LocalKafkaCluster.existing_size(kafka_cluster.home, kafka_cluster.name) == 3
