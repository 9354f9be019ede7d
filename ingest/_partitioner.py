"""A sticky partitioner for keyless raw records: fewer, fuller producer batches.

aiokafka picks a random partition per keyless record, which splits concurrent requests
into one small batch per partition. Sticking to one partition for a short window (as the
Java client's sticky partitioner does) fills batches and halves broker requests, while
the rotation still spreads records evenly over time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

STICK_FOR_S = 0.005


class StickyPartitioner:
    def __init__(self, stick_for_s: float = STICK_FOR_S) -> None:
        self.stick_for_s = stick_for_s
        self._index = 0
        self._until = 0.0

    def __call__(self, key: bytes | None, all_partitions: Sequence[int],
                 available: Sequence[int]) -> int:
        choices = available or all_partitions
        now = time.monotonic()
        if now >= self._until:
            self._index += 1
            self._until = now + self.stick_for_s
        return sorted(choices)[self._index % len(choices)]
