"""Dead letters as an operator sees them: one model for `dlq`, `unknown`, `sink.dlq` and the
ingest's quarantine, a filter, and the ways to read them (a page, all that match, a pick).

Kafka sources are read by offsets: a page starts where the previous one stopped (its
cursor holds the next offset per partition) and reads at most `scan_limit` records, so a
topic of millions of records is never loaded whole. Within a page, letters are in time
order; `Page.cursor` continues after them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import cached_property

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from ingest.record import ACCOUNT, RECEIPT_ID, RECEIVED_AT_MS
from qikflow.operations import SOURCES, _kafka
from qikflow.operations.errors import BadInputError
from qikflow.operations.pipeline import Pipeline
from qikflow.operations.records import REDRIVEN_FROM, body_kind
from qikflow.operations.times import TimeRange
from streams import headers as names
from streams.headers import header

QUARANTINE = "quarantine"


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter: where it sits, when it got there, its bytes and headers."""

    source: str
    topic: str  # "" for the quarantine
    partition: int  # -1 for the quarantine
    offset: int  # -1 for the quarantine
    timestamp_ms: int  # when it was dead-lettered (or quarantined)
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    size: int = 0
    quarantine_reason: str = ""

    @classmethod
    def from_record(cls, source: str, record: ConsumerRecord) -> DeadLetter:
        value = record.value or b""
        return cls(source, record.topic, record.partition, record.offset,
                   _kafka.record_time(record), record.key, value, list(record.headers or ()),
                   len(value))

    @property
    def ref(self) -> str:
        """What names it in a selection: `dlq:2:1532`, `quarantine:<receipt id>`."""
        if self.source == QUARANTINE:
            return f"{QUARANTINE}:{self.receipt_id}"
        return f"{self.source}:{self.partition}:{self.offset}"

    @property
    def where(self) -> str:
        if self.source == QUARANTINE:
            return f"{QUARANTINE}:{self.receipt_id}"
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def _header(self, name: str) -> str:
        return header(self.headers, name)

    @property
    def reason(self) -> str:
        return self.quarantine_reason or self._header(names.REASON)

    @property
    def error(self) -> str:
        return self._header(names.ERROR)

    @property
    def failed_by(self) -> str:
        """The stage that dead-lettered it: `router` (every `unknown` record), `dedup`, an
        agent, `sink:<name>`, or `ingest` for the quarantine."""
        if self.source == QUARANTINE:
            return "ingest"
        if self.source == "unknown":
            return names.ROUTER
        sink = self._header(names.FAILED_SINK)
        return f"sink:{sink}" if sink else self._header(names.FAILED_AGENT)

    @property
    def receipt_id(self) -> str:
        return self._header(RECEIPT_ID)

    @property
    def account(self) -> str:
        return self._header(ACCOUNT)

    @property
    def received_at_ms(self) -> int:
        received = self._header(RECEIVED_AT_MS)
        return int(received) if received.isdigit() else 0

    @property
    def source_topic(self) -> str:
        return self._header(names.SOURCE_TOPIC)

    @property
    def redriven_from(self) -> str:
        return self._header(REDRIVEN_FROM)

    @cached_property
    def event_type(self) -> str:
        """The event type (`message.text`) of an event; for a raw body, its Qikchat `event`
        or Meta `object`; "" when it says neither."""
        return self._header(names.EVENT_TYPE) or body_kind(self.value)

    @property
    def is_raw(self) -> bool:
        """Its value is a webhook body as received (not an event made from one)."""
        return self.source in ("unknown", QUARANTINE) or self.failed_by == names.ROUTER


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters an action takes. `reason` matches part of the reason (any case),
    `type` is a shell pattern (`message.*`), `account` must be equal; empty takes all."""

    reason: str = ""
    type: str = ""
    account: str = ""
    times: TimeRange = field(default_factory=TimeRange)

    def matches(self, letter: DeadLetter) -> bool:
        if not self.times.contains_ms(letter.timestamp_ms):
            return False
        if self.reason and self.reason.lower() not in letter.reason.lower():
            return False
        if self.account and letter.account != self.account:
            return False
        return not self.type or fnmatch.fnmatchcase(letter.event_type, self.type)

    def describe(self) -> str:
        parts = [f"{name} {value!r}" for name, value in
                 (("reason", self.reason), ("type", self.type), ("account", self.account))
                 if value]
        return ", ".join([*parts, f"dead-lettered {self.times.describe()}"])

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "type": self.type, "account": self.account,
                "since": self.times.since.isoformat() if self.times.since else "",
                "until": self.times.until.isoformat() if self.times.until else ""}


Cursor = dict[int, int]  # partition -> next offset (the quarantine: -1 -> entries skipped)


def encode_cursor(cursor: Cursor) -> str:
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(cursor.items()))


def decode_cursor(text: str) -> Cursor:
    cursor: Cursor = {}
    for part in filter(None, text.split(",")):
        partition, _, offset = part.partition(":")
        try:
            cursor[int(partition)] = int(offset)
        except ValueError:
            raise BadInputError(f"page cursor {text!r} is not `partition:offset,...`; open the "
                                "first page again") from None
    return cursor


@dataclass
class Page:
    letters: list[DeadLetter]
    cursor: Cursor | None  # where the next page starts; None at the end
    scanned: int
    held: int  # records the source holds in all (matching or not)


def source_topic(pipeline: Pipeline, source: str) -> str:
    if source not in SOURCES:
        raise BadInputError(f"unknown dead-letter source {source!r}: choose one of "
                            f"{', '.join(SOURCES)}")
    topics = pipeline.topics
    return {"dlq": topics.dlq, "unknown": topics.unknown, "sink.dlq": topics.sink_dlq}[source]


async def _ranges(consumer: AIOKafkaConsumer, topic: str, times: TimeRange,
                  cursor: Cursor | None) -> tuple[dict[TopicPartition, tuple[int, int]], int]:
    """Per partition, the offsets to read for `times` from `cursor`; and the records held."""
    tps = await _kafka.partitions(consumer, topic)
    starts, ends = await _kafka.bounds(consumer, tps)
    held = sum(ends[tp] - starts[tp] for tp in tps)
    if times.since_ms is not None:
        starts = await _kafka.offsets_at(consumer, tps, times.since_ms)
    if times.until_ms is not None:
        ends = await _kafka.offsets_at(consumer, tps, times.until_ms + 1)
    ranges = {}
    for tp in tps:
        start = max(starts[tp], (cursor or {}).get(tp.partition, 0))
        ranges[tp] = (min(start, ends[tp]), ends[tp])
    return ranges, held


async def read_page(pipeline: Pipeline, source: str, selection: DeadLetterFilter, *,
                    cursor: Cursor | None, size: int, scan_limit: int) -> Page:
    """The next `size` letters that match, reading at most `scan_limit` records."""
    if source == QUARANTINE:
        from qikflow.operations import _quarantine

        return _quarantine.read_page(pipeline, selection, cursor=cursor, size=size)
    topic = source_topic(pipeline, source)
    async with _kafka.reader(pipeline.kafka) as consumer:
        ranges, held = await _ranges(consumer, topic, selection.times, cursor)
        reader = _kafka.RangeReader(consumer, ranges)
        found: dict[TopicPartition, list[DeadLetter]] = {tp: [] for tp in ranges}
        scanned = 0
        async for batch in reader.batches():
            for tp, records in batch.items():
                scanned += len(records)
                for record in records:
                    letter = DeadLetter.from_record(source, record)
                    if selection.matches(letter):
                        found[tp].append(letter)
                if len(found[tp]) >= size:
                    reader.finish(tp)
            if scanned >= scan_limit:
                break
        letters = sorted((letter for matches in found.values() for letter in matches),
                         key=lambda one: (one.timestamp_ms, one.partition, one.offset))[:size]
        taken = {(letter.partition, letter.offset) for letter in letters}
        cursor_next: Cursor = {}
        more = False
        for tp, matches in found.items():
            left = [one.offset for one in matches if (one.partition, one.offset) not in taken]
            cursor_next[tp.partition] = left[0] if left else reader.position(tp)
            more = more or bool(left) or reader.position(tp) < ranges[tp][1]
    return Page(letters, cursor_next if more else None, scanned, held)


async def each_match(pipeline: Pipeline, source: str, selection: DeadLetterFilter, *,
                     progress: Callable[[int, int], None] | None = None,
                     ) -> AsyncIterator[list[DeadLetter]]:
    """Every matching letter, a batch at a time, up to the end offsets taken at the start;
    `progress(scanned, total)` after each batch."""
    if source == QUARANTINE:
        from qikflow.operations import _quarantine

        done = 0
        for letters, total in _quarantine.each_match(pipeline, selection):
            done += len(letters)
            if progress is not None:
                progress(done, total)
            yield letters
        return
    topic = source_topic(pipeline, source)
    async with _kafka.reader(pipeline.kafka) as consumer:
        ranges, _ = await _ranges(consumer, topic, selection.times, None)
        total = sum(stop - start for start, stop in ranges.values())
        scanned = 0
        async for batch in _kafka.RangeReader(consumer, ranges).batches():
            letters = []
            for records in batch.values():
                scanned += len(records)
                letters += [DeadLetter.from_record(source, record) for record in records]
            matching = [letter for letter in letters if selection.matches(letter)]
            if progress is not None:
                progress(scanned, total)
            if matching:
                yield matching


async def picked(pipeline: Pipeline, refs: list[str]) -> list[DeadLetter]:
    """The letters named by `refs` (`dlq:2:1532`, `quarantine:<receipt id>`), in that order;
    an unknown ref is an UnknownIdError."""
    from qikflow.operations import _quarantine
    from qikflow.operations.errors import UnknownIdError

    wanted: dict[str, list[tuple[int, int]]] = {}
    receipts: list[str] = []
    for ref in refs:
        source, _, rest = ref.partition(":")
        if source == QUARANTINE and rest:
            receipts.append(rest)
            continue
        partition, _, offset = rest.partition(":")
        if source not in SOURCES or not partition.isdigit() or not offset.isdigit():
            raise BadInputError(f"{ref!r} names no dead letter: use <source>:<partition>:<offset>"
                                " or quarantine:<receipt id>")
        wanted.setdefault(source, []).append((int(partition), int(offset)))
    found = {letter.ref: letter for letter in _quarantine.picked(pipeline, receipts)}
    if wanted:
        async with _kafka.reader(pipeline.kafka) as consumer:
            for source, positions in wanted.items():
                topic = source_topic(pipeline, source)
                for letter in await _read_positions(consumer, source, topic, positions):
                    found[letter.ref] = letter
    missing = [ref for ref in refs if ref not in found]
    if missing:
        raise UnknownIdError(f"no dead letter at {', '.join(missing[:5])}"
                             f"{' ...' if len(missing) > 5 else ''}; nothing was done")
    return [found[ref] for ref in refs]


async def _read_positions(consumer: AIOKafkaConsumer, source: str, topic: str,
                          positions: list[tuple[int, int]]) -> list[DeadLetter]:
    tps = {tp.partition: tp for tp in await _kafka.partitions(consumer, topic)}
    starts, ends = await _kafka.bounds(consumer, list(tps.values()))
    letters = []
    for partition, offset in sorted(set(positions)):
        tp = tps.get(partition)
        if tp is None or not starts[tp] <= offset < ends[tp]:
            continue
        reader = _kafka.RangeReader(consumer, {tp: (offset, offset + 1)})
        async for batch in reader.batches():
            letters += [DeadLetter.from_record(source, record)
                        for record in batch.get(tp, []) if record.offset == offset]
    return letters
