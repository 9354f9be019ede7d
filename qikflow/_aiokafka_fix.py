"""A fix to aiokafka's consumer, applied once when `qikflow.config` is imported (every Kafka
client of qikflow is built from its settings).

When a consumer must look up where to start reading a partition (a new group, a partition
never committed, an offset out of range), aiokafka asks the partition's leader as its
metadata says. If leadership has moved (a broker died, hung or restarted), the old leader
answers NotLeaderForPartition, and aiokafka logs the error and asks the same broker again,
without refreshing its metadata: the partition, and every other partition it would fetch
from that broker, stays stuck until the periodic refresh (`metadata_max_age_ms`, 5
minutes). A fault drill that hung a broker for 15 s left the lake sink stuck like this
until the end of the run. The Java consumer refreshes its metadata on these errors
(KAFKA-9535); so does this fix, then lets aiokafka retry as before.
"""

from __future__ import annotations

import functools
from typing import Any

from aiokafka import errors
from aiokafka.consumer.fetcher import Fetcher

STALE_LEADER = (errors.NotLeaderForPartitionError, errors.UnknownTopicOrPartitionError,
                errors.LeaderNotAvailableError)


def refresh_metadata_on_stale_leader() -> None:
    """Make `Fetcher._proc_offset_request` ask for fresh metadata when the broker it asked
    is not the partition's leader (idempotent)."""
    original = Fetcher._proc_offset_request
    if getattr(original, "refreshes_metadata", False):
        return

    @functools.wraps(original)
    async def proc_offset_request(self: Fetcher, node_id: int, topic_data: Any) -> Any:
        try:
            return await original(self, node_id, topic_data)
        except STALE_LEADER:
            self._client.force_metadata_update()
            raise

    proc_offset_request.refreshes_metadata = True  # type: ignore[attr-defined]
    Fetcher._proc_offset_request = proc_offset_request
