"""Finding records without an index: by time, in a bounded window of a topic.

A receipt id is a UUIDv7 (`ingest/record.py`): its first 48 bits are the millisecond the
ingest received the body. Every record made from that body (the raw record, its events,
its dead letters) was written at or after that moment, later when it waited in the spool
or behind a lagging consumer. So a search seeks each partition to that time
(offsets-for-times), reads forward until it has found what it wants, and stops at the
end of the window or after `limit` records: a search costs a window, never a topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from ingest.record import RECEIPT_ID
from qikflow.operations import _kafka
from qikflow.operations.errors import BadInputError
from streams.headers import header

# Clocks of the ingest hosts and the brokers may differ a little: start this much earlier.
CLOCK_SKEW_MS = 5_000


def receipt_time_ms(receipt_id: str) -> int:
    """When the ingest received the body of `receipt_id` (epoch ms); a BadInputError when
    the text is no receipt id."""
    try:
        parsed = uuid.UUID(receipt_id.strip())
    except ValueError:
        raise BadInputError(f"{receipt_id!r} is not a receipt id (a UUID such as "
                            "0190f5e2-8c4b-7d3e-9a1b-2c3d4e5f6a7b)") from None
    if parsed.version != 7:
        raise BadInputError(f"{receipt_id!r} is a UUID but not a qikflow receipt id "
                            "(those are UUIDv7)")
    return parsed.int >> 80


def is_receipt_id(text: str) -> bool:
    try:
        receipt_time_ms(text)
    except BadInputError:
        return False
    return True


@dataclass
class Search:
    """What a search found, what it read, and whether it read its whole window."""

    topic: str
    since_ms: int
    until_ms: int
    found: list[ConsumerRecord] = field(default_factory=list)
    scanned: int = 0
    complete: bool = True

    def describe(self) -> str:
        from qikflow.operations.times import format_ms

        span = f"{format_ms(self.since_ms)} to {format_ms(self.until_ms)}"
        cut = "" if self.complete else " (stopped at the search limit)"
        return f"read {self.scanned} records of {self.topic} written {span}{cut}"


async def search(consumer: AIOKafkaConsumer, topic: str, since_ms: int, until_ms: int,
                 match: Callable[[ConsumerRecord], bool], *,
                 partitions: list[int] | None = None, want: int | None = None,
                 limit: int | None = None) -> Search:
    """Records of `topic` written from `since_ms` to `until_ms` for which `match` is true;
    stops once `want` are found or `limit` records were read."""
    result = Search(topic, since_ms, until_ms)
    tps = [tp for tp in await _kafka.partitions(consumer, topic)
           if partitions is None or tp.partition in partitions]
    if not tps:
        return result
    starts = await _kafka.offsets_at(consumer, tps, since_ms)
    stops = await _kafka.offsets_at(consumer, tps, until_ms + 1)
    ranges: dict[TopicPartition, tuple[int, int]] = {tp: (starts[tp], stops[tp]) for tp in tps}
    async for batch in _kafka.RangeReader(consumer, ranges).batches():
        for records in batch.values():
            result.scanned += len(records)
            result.found += [record for record in records if match(record)]
        if want is not None and len(result.found) >= want:
            return result
        if limit is not None and result.scanned >= limit:
            result.complete = False
            return result
    return result


async def find_raw(consumer: AIOKafkaConsumer, topic: str, receipt_ids: set[str], *,
                   window_s: int, limit: int | None = None) -> tuple[dict[str, ConsumerRecord],
                                                                     Search]:
    """The raw records of `receipt_ids`, each looked for within `window_s` of its receipt."""
    times = [receipt_time_ms(receipt) for receipt in receipt_ids]
    if not times:
        return {}, Search(topic, 0, 0)
    remaining = set(receipt_ids)

    def first_of_its_receipt(record: ConsumerRecord) -> bool:
        receipt = header(record.headers or (), RECEIPT_ID)
        if receipt not in remaining:
            return False
        remaining.discard(receipt)
        return True

    found = await search(consumer, topic, min(times) - CLOCK_SKEW_MS,
                         max(times) + window_s * 1000, first_of_its_receipt,
                         want=len(receipt_ids), limit=limit)
    records = {header(record.headers or (), RECEIPT_ID): record for record in found.found}
    return records, found
