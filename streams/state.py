"""The worker's local state (the dedup table in RocksDB): where it lives, and what is thrown
away at start because Kafka no longer backs it.

The table is a cache of its changelog topic. Files written for one Kafka cluster, one
topic prefix or one generation of topics describe nothing in another, and Faust refuses to
start on them (`ConsistencyError: The persisted offset ... is higher than the last offset
in that topic`), at every restart. So:

- the state lives under `<data dir>/cluster-<Kafka cluster id>/<consumer group>/worker-<i>`:
  another cluster (a new local broker after `qikflow broker wipe` gets a new id) or another
  prefix (another group) starts from its own, empty folder;
- before Faust starts, each table partition kept on disk is compared with its changelog:
  a partition that claims an offset the changelog does not have (the topics were deleted
  and created again) is deleted, with one WARNING line, and Faust rebuilds it from the
  changelog like any partition it has never held.
"""

from __future__ import annotations

import logging
import re
import shutil
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

if TYPE_CHECKING:
    from pathlib import Path

    from qikflow.config import KafkaSettings

logger = logging.getLogger(__name__)

CLIENT_ID = "qikflow-streams-state"
# A cluster id is 22 characters of URL-safe base64; anything else is kept out of the path.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


async def kafka_cluster_id(kafka: KafkaSettings) -> str:
    """The id of the Kafka cluster at `kafka.bootstrap`, as its metadata reports it."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=CLIENT_ID)
    await admin.start()
    try:
        described = await admin.describe_cluster()
    finally:
        await admin.close()
    cluster_id = described.get("cluster_id")
    if not cluster_id:
        # Brokers before Kafka 0.10.1 report none; one folder then serves them all.
        logger.warning("Kafka at %s reports no cluster id; the worker's state is kept under "
                       "cluster-unknown", kafka.bootstrap)
        return "unknown"
    return str(cluster_id)


def state_dir(data_dir: Path, cluster_id: str, group: str, worker_index: int) -> Path:
    """The folder of worker `worker_index`'s state for one cluster and consumer group."""
    return (data_dir / f"cluster-{_UNSAFE.sub('_', cluster_id)}" / _UNSAFE.sub("_", group)
            / f"worker-{worker_index}")


async def discard_stale_partitions(kafka: KafkaSettings, table: Any) -> list[int]:
    """Delete the partitions of `table` (a Faust table on RocksDB) whose persisted changelog
    offset is at or past the end of the changelog; return them.

    Runs before the Faust app starts: nothing else has the files open.
    """
    store = table.data
    changelog = table.changelog_topic.get_topic_name()
    kept = {partition: store.partition_path(partition)
            for partition in range(table.partitions or 0)}
    kept = {partition: path for partition, path in kept.items() if path.exists()}
    if not kept:
        return []
    ends = await _end_offsets(kafka, changelog)
    stale: list[str] = []
    for partition, path in sorted(kept.items()):
        persisted = _persisted_offset(store, path)
        end = ends.get(partition, 0)
        if persisted is not None and persisted >= end:
            shutil.rmtree(path)
            stale.append(f"{partition} ({persisted} >= {end})")
    if stale:
        logger.warning(
            "local state of %s in %s claims changelog offsets %s does not have (partition "
            "(persisted offset >= end of the changelog): %s): the topics were created again "
            "or belong to another cluster; deleted those partitions, Faust rebuilds them "
            "from the changelog", table.name, store.path, changelog, ", ".join(stale))
    return [int(entry.split(" ", 1)[0]) for entry in stale]


def _persisted_offset(store: Any, path: Path) -> int | None:
    """The changelog offset a partition's files say they hold, as Faust wrote it."""
    db = store.rocksdb_options.open(path)
    try:
        value = db.get(store.offset_key)
    finally:
        db.close()
    return int(value) if value is not None else None


async def _end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic`; none when the topic does not exist.

    Asks for the topic's metadata only once it is listed: a broker that auto-creates
    topics would create it, with its own defaults, on a metadata request for it."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=CLIENT_ID)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return {}
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(**kafka.client_options(), client_id=CLIENT_ID,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}
