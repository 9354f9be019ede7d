"""A Faust RocksDB table's store, read and written partition by partition.

Dedup and the state folds know the partition of every key they touch (the keyed record's).
Faust's store API (`table.data[key]`) finds it again on each access from the current event,
records the key in an LRU index, and answers a missing key with a KeyError: together a
tenth of the worker's time in a profile. Here each call goes to the partition's RocksDB
database directly, the one Faust opened and recovers; Faust's key index only serves reads
that come without an event (its web views), which these tables have none of.
"""

from __future__ import annotations

from typing import Any


class PartitionStore:
    """`get`, `put` and `delete` on the RocksDB database of one table partition."""

    def __init__(self, table: Any) -> None:
        self.faust_store = table.data  # Faust's Store: persisted offsets, recovery
        self._db_for_partition = self.faust_store._db_for_partition

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self._db_for_partition(partition).get(key)
        return value

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self._db_for_partition(partition).put(key, value)

    def delete(self, partition: int, key: bytes) -> None:
        self._db_for_partition(partition).delete(key)
