"""How far a table's changelog goes, as the table's own writes reach it.

Dedup and the state folds write their RocksDB store directly and send each changelog
record as an output (`dedup.py` says why). Faust's changelog callback would record, per
record, the changelog offset the store holds; here the delivered offsets are gathered and
written to the store once per batch. A RocksDB write per event was 4 % of the worker's
time, and an offset that lags only makes recovery after a restart re-read a few changelog
records, which it applies idempotently.
"""

from __future__ import annotations

from typing import Any

from faust.types import TP


class ChangelogOffsets:
    """The highest delivered changelog offset per partition, persisted on `persist()`."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._delivered: dict[TP, int] = {}
        self._persisted: dict[TP, int] = {}

    def delivered(self, topic: str, partition: int, offset: int) -> None:
        """The changelog holds its records up to `offset` of `partition`."""
        tp = TP(topic, partition)
        if offset > self._delivered.get(tp, -1):
            self._delivered[tp] = offset

    def persist(self) -> None:
        """Tell the store how far its changelog goes (once per batch)."""
        for tp, offset in self._delivered.items():
            if offset > self._persisted.get(tp, -1):
                self._persisted[tp] = offset
                self._store.set_persisted_offset(tp, offset)

    def keep(self, partitions: set[int]) -> None:
        """After a rebalance: forget the partitions this worker lost."""
        for offsets in (self._delivered, self._persisted):
            for tp in [tp for tp in offsets if tp.partition not in partitions]:
                del offsets[tp]
