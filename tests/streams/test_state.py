"""The worker's local state (`streams/state.py`): kept per Kafka cluster and consumer group,
and thrown away, with one warning, where it claims changelog offsets Kafka does not have
(real broker)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import ensure_topics, specs_for
from qikflow.topics import Topics
from streams.app import create_app
from streams.dedup import TABLE
from streams.settings import StreamsSettings
from streams.state import discard_stale_partitions, kafka_cluster_id
from tests.fixtures.kafka import delete_topics
from tests.streams._worker import WorkerCluster, routed_ids, send_raw, traffic

STALE_WARNING = "claims changelog offsets"


def test_the_cluster_id_is_the_one_the_broker_reports(kafka_bootstrap: str) -> None:
    async def reported() -> str:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return str((await admin.describe_cluster())["cluster_id"])
        finally:
            await admin.close()

    found = asyncio.run(kafka_cluster_id(KafkaSettings(bootstrap=kafka_bootstrap)))
    assert found == asyncio.run(reported())
    assert found


def write_partition(table: object, partition: int, persisted: int | None) -> Path:
    """Files of one table partition as Faust leaves them, claiming `persisted`."""
    store = table.data  # type: ignore[attr-defined]
    path: Path = store.partition_path(partition)
    db = store.rocksdb_options.open(path)
    db.put(b"wamid.1", b"1:0:1763643200000")
    if persisted is not None:
        db.put(store.offset_key, str(persisted).encode())
    db.close()
    return path


def test_partitions_that_claim_offsets_past_the_changelog_are_deleted_with_one_warning(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kafka = KafkaSettings()
    streams = create_app(kafka, StreamsSettings(data_dir=tmp_path), cluster_id="c1")
    table = streams.app.tables[TABLE]
    changelog = table.changelog_topic.get_topic_name()
    asyncio.run(ensure_topics(kafka, specs_for(kafka, [changelog])))
    asyncio.run(produce(kafka_bootstrap, changelog, partition=2, count=5))  # offsets 0..4
    stale = write_partition(table, 0, 325)  # the "325 > -1": partition 0 is empty
    unclaimed = write_partition(table, 1, None)
    behind = write_partition(table, 2, 3)
    with caplog.at_level(logging.WARNING, logger="streams.state"):
        discarded = asyncio.run(discard_stale_partitions(kafka, table))
    assert discarded == [0]
    assert not stale.exists()
    assert unclaimed.exists() and behind.exists()
    warnings = [r for r in caplog.records
                if r.name == "streams.state" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert STALE_WARNING in warnings[0].getMessage()
    assert "0 (325 >= 0)" in warnings[0].getMessage()
    # Nothing left to discard the second time.
    assert asyncio.run(discard_stale_partitions(kafka, table)) == []


def test_a_partition_whose_offset_is_the_end_of_the_changelog_is_stale(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    kafka = KafkaSettings()
    table = create_app(kafka, StreamsSettings(data_dir=tmp_path), cluster_id="c1"
                       ).app.tables[TABLE]
    changelog = table.changelog_topic.get_topic_name()
    asyncio.run(ensure_topics(kafka, specs_for(kafka, [changelog])))
    asyncio.run(produce(kafka_bootstrap, changelog, partition=1, count=5))
    last = write_partition(table, 1, 4)  # the last record: consistent
    assert asyncio.run(discard_stale_partitions(kafka, table)) == []
    write_partition(table, 1, 5)  # one past it: the changelog never had it
    assert asyncio.run(discard_stale_partitions(kafka, table)) == [1]
    assert not last.exists()


def test_workers_of_two_prefixes_and_after_their_topics_are_recreated_route(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"  # one QIKFLOW_HOME, as one machine running both
    first, second = (WorkerCluster(kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}", home)
                     for _ in range(2))
    try:
        for round_, cluster in enumerate((first, second, first)):
            if round_ == 2:  # `qikflow broker wipe` on a shared broker: the topics go
                asyncio.run(delete_topics(kafka_bootstrap, first.prefix))
                asyncio.run(wait_deleted(kafka_bootstrap, first.prefix))
            worker = cluster.start()
            # Two waves: dedup records how far its changelog goes after each batch, so the
            # second wave makes the state claim the offsets of the first.
            expected: set[str] = set()
            for wave in range(2):
                bodies, ids = traffic(100, f"r{round_}w{wave}")
                expected |= ids
                asyncio.run(send_raw(kafka_bootstrap, Topics(cluster.prefix).raw, bodies))
                seen = routed_ids(kafka_bootstrap, cluster.prefix, len(expected))
                assert expected <= set(seen), f"round {round_}: {len(expected - set(seen))} lost"
            assert worker.stop() == 0, worker.log.read_text()[-3000:]
            log = worker.log.read_text()
            assert "ConsistencyError" not in log
            assert log.count(STALE_WARNING) == (1 if round_ == 2 else 0), log[-3000:]
    finally:
        first.stop_all()
        second.stop_all()


async def produce(bootstrap: str, topic: str, *, partition: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(topic, b"v", key=b"k%d" % n, partition=partition)
    finally:
        await producer.stop()


async def wait_deleted(bootstrap: str, prefix: str) -> None:
    """Until the broker lists none of the prefix's topics (deletion is asynchronous)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(300):
            if not [t for t in await admin.list_topics()
                    if t.startswith((f"{prefix}.", f"{prefix}-"))]:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the topics of {prefix} are still there")
    finally:
        await admin.close()
