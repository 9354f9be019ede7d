"""Re-drive: send dead letters back into the pipeline, to be handled again by today's code.

Each dead letter goes back to the earliest place where it is not dropped as already seen:

- a webhook body (`unknown`, the router's `dlq` letters, the quarantine) goes to
  `<prefix>.raw` as it came, with its ingest headers;
- an event that dedup dead-lettered goes back as the raw record it came from (found in
  `<prefix>.raw` by its receipt id), so the router parses it again; copies of it that
  were delivered before are dropped by dedup, the event that was not is routed;
- an event that a stage after dedup failed on (an extension agent, a sink) was already
  delivered to its per-type topic, where dedup would drop it: it goes back to that topic
  (`qikflow-source-topic`) with its own key and headers.

Every record sent carries `qikflow-redriven-at-ms` and `qikflow-redriven-from`. Kafka
letters stay where they were (a topic is a log), so re-driving twice sends twice: dedup
and the idempotent sinks make that harmless, and a letter that is the re-driven copy of a
letter still in the same topic is skipped, so repeated re-drives do not multiply. The
quarantine gives a body up only once Kafka has acknowledged it. Records go out in batches
that are awaited (REQUEST_TIMEOUT_MS at most): when Kafka fails, the run stops, and each
record is either in its destination or still where it was. (A batch Kafka wrote but did
not acknowledge in time is in both; re-driven again, dedup drops the second copy.)
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from ingest._producer import refused_record
from qikflow.operations import _kafka, _quarantine
from qikflow.operations.dead_letters import (
    QUARANTINE,
    DeadLetter,
    DeadLetterFilter,
    each_match,
    picked,
)
from qikflow.operations.errors import KafkaUnavailableError
from qikflow.operations.pipeline import Pipeline
from qikflow.operations.raw_records import find_raw
from qikflow.operations.records import INGEST_HEADERS, REDRIVEN_AT_MS, REDRIVEN_FROM
from streams import headers as names

logger = logging.getLogger(__name__)

BATCH = 500
# How long a batch may wait for Kafka's acknowledgement before the run stops.
ACK_TIMEOUT_S = _kafka.REQUEST_TIMEOUT_MS / 1000
# Headers a dead-letter topic adds; a letter sent back to its source topic loses them.
DEAD_LETTER_HEADERS = frozenset({
    names.REASON, names.ERROR, names.FAILED_AGENT, names.FAILED_SINK, names.SOURCE_TOPIC,
    names.SOURCE_PARTITION, names.SOURCE_OFFSET, REDRIVEN_AT_MS, REDRIVEN_FROM,
})
_WHERE = re.compile(r"^(?P<topic>.+)\[(?P<partition>\d+)\]@(?P<offset>\d+)$")

SKIP_COPY = "re-driven copy of a letter still in the topic (that one is re-driven instead)"
SKIP_NO_RAW = "raw record not found in <prefix>.raw (past its retention, or the search window)"
SKIP_NO_SOURCE = "no receipt id or source topic to send it back to"

Progress = Callable[[int, int, int], None]  # scanned, total, sent


@dataclass
class Resend:
    """One record to send for one dead letter."""

    letter: DeadLetter
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class RedriveSummary:
    """What a re-drive did (or, with `dry_run`, would do)."""

    source: str
    selection: str
    dry_run: bool
    matched: int = 0
    sent: int = 0
    destinations: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)  # quarantine bodies Kafka refused
    error: str | None = None  # why the run stopped early

    @property
    def complete(self) -> bool:
        return self.error is None and not self.refused

    def lines(self) -> list[str]:
        verb = "would send" if self.dry_run else "sent"
        out = [f"re-drive from {self.source} ({self.selection}): {self.matched} matched, "
               f"{verb} {self.sent}"]
        out += [f"  {count} to {topic}" for topic, count in sorted(self.destinations.items())]
        out += [f"  skipped {count}: {why}" for why, count in sorted(self.skipped.items())]
        out += [f"  refused by Kafka, kept in the quarantine: {one}" for one in self.refused]
        if self.error:
            out.append(f"  STOPPED: {self.error}")
        return out


def _without(headers: list[tuple[str, bytes]], drop: frozenset[str]) -> list[tuple[str, bytes]]:
    return [(name, value) for name, value in headers if name not in drop]


def _marks(letter: DeadLetter, now_ms: int) -> list[tuple[str, bytes]]:
    return [(REDRIVEN_AT_MS, str(now_ms).encode()), (REDRIVEN_FROM, letter.where.encode())]


def _is_copy(letter: DeadLetter, starts: dict[tuple[str, int], int]) -> bool:
    """A re-driven copy of a letter that is still in the same topic."""
    match = _WHERE.match(letter.redriven_from)
    if match is None or match["topic"] != letter.topic:
        return False
    start = starts.get((letter.topic, int(match["partition"])))
    return start is not None and int(match["offset"]) >= start


class _Run:
    """One re-drive: plans each batch of letters, then sends it (unless a dry run)."""

    def __init__(self, pipeline: Pipeline, summary: RedriveSummary, window_s: int,
                 consumer: AIOKafkaConsumer) -> None:
        self.pipeline = pipeline
        self.summary = summary
        self.window_s = window_s
        self.consumer = consumer
        self.raw_sent: set[str] = set()  # receipt ids of dedup letters resolved this run
        self.starts: dict[tuple[str, int], int] = {}

    async def plan(self, letters: list[DeadLetter]) -> list[Resend]:
        now_ms = time.time_ns() // 1_000_000
        await self._load_starts(letters)
        plans: list[Resend] = []
        needs_raw: dict[str, DeadLetter] = {}
        raw = self.pipeline.topics.raw
        for letter in letters:
            self.summary.matched += 1
            if letter.source != QUARANTINE and _is_copy(letter, self.starts):
                self.summary.skipped[SKIP_COPY] += 1
            elif letter.is_raw:
                headers = [*_without(letter.headers, DEAD_LETTER_HEADERS), *_marks(letter, now_ms)]
                plans.append(Resend(letter, raw, None, letter.value, [
                    (name, value) for name, value in headers
                    if name in INGEST_HEADERS or name in (REDRIVEN_AT_MS, REDRIVEN_FROM)]))
            elif letter.failed_by == names.DEDUP and letter.receipt_id:
                if letter.receipt_id not in self.raw_sent:
                    needs_raw.setdefault(letter.receipt_id, letter)
            elif letter.source_topic:
                headers = [*_without(letter.headers, DEAD_LETTER_HEADERS), *_marks(letter, now_ms)]
                plans.append(Resend(letter, letter.source_topic, letter.key, letter.value,
                                    headers))
            else:
                self.summary.skipped[SKIP_NO_SOURCE] += 1
        if needs_raw:
            found, _ = await find_raw(self.consumer, raw, set(needs_raw), window_s=self.window_s)
            for receipt, letter in needs_raw.items():
                record = found.get(receipt)
                if record is None:
                    self.summary.skipped[SKIP_NO_RAW] += 1
                    continue
                self.raw_sent.add(receipt)
                headers = [(name, value) for name, value in record.headers or ()
                           if name in INGEST_HEADERS]
                plans.append(Resend(letter, raw, None, record.value or b"",
                                    [*headers, *_marks(letter, now_ms)]))
        return plans

    async def _load_starts(self, letters: list[DeadLetter]) -> None:
        topics = {letter.topic for letter in letters
                  if letter.topic and letter.redriven_from and letter.topic not in
                  {topic for topic, _ in self.starts}}
        for topic in topics:
            tps = await _kafka.partitions(self.consumer, topic)
            starts, _ = await _kafka.bounds(self.consumer, tps)
            self.starts.update({(tp.topic, tp.partition): offset for tp, offset in starts.items()})

    def count(self, plans: list[Resend]) -> None:
        """A dry run: count what would be sent."""
        self.summary.sent += len(plans)
        self.summary.destinations.update(plan.topic for plan in plans)

    async def send(self, producer: AIOKafkaProducer, plans: list[Resend]) -> None:
        """Send one batch and wait for it; the quarantine gives up what Kafka acknowledged.

        Kafka refuses a whole producer batch for one record in it (too large, say), so a
        refused record is sent again alone; one refused alone stays where it was. Any other
        failure ends the run once the batch is settled."""
        outcomes = await _settled(producer, plans)
        for index, plan in enumerate(plans):
            if _refused(outcomes[index]):
                (outcomes[index],) = await _settled(producer, [plan])
                if _refused(outcomes[index]):
                    self.summary.refused.append(f"{plan.letter.where}: {outcomes[index]!r}")
        delivered = [plan for plan, outcome in zip(plans, outcomes, strict=True)
                     if outcome is None]
        for plan in delivered:
            self.summary.sent += 1
            self.summary.destinations[plan.topic] += 1
        _quarantine.remove(self.pipeline, [plan.letter.receipt_id for plan in delivered
                                           if plan.letter.source == QUARANTINE])
        failure = next((outcome for outcome in outcomes
                        if outcome is not None and not _refused(outcome)), None)
        if failure is not None:
            raise failure


async def _settled(producer: AIOKafkaProducer, plans: list[Resend]
                   ) -> list[KafkaError | None]:
    """Send `plans` and wait for them, ACK_TIMEOUT_S at most in all: None for each one
    acknowledged, else its error.

    The wait is bounded here as a whole: each send() may wait a request timeout for room in
    its buffer, and each batch another for its acknowledgement. Once a send fails for a
    reason other than its own record, the rest are not sent and carry that error."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ACK_TIMEOUT_S
    pending: list[asyncio.Future[object] | KafkaError] = []
    stopped: KafkaError | None = None
    try:
        async with asyncio.timeout_at(deadline):
            for plan in plans:
                try:
                    pending.append(await producer.send(plan.topic, plan.value, key=plan.key,
                                                       headers=plan.headers))
                except KafkaError as error:
                    pending.append(error)
                    if not refused_record(error):
                        stopped = error
                        break
    except TimeoutError:
        stopped = _no_ack()
    futures = [one for one in pending if not isinstance(one, KafkaError)]
    if futures:
        await asyncio.wait(futures, timeout=max(0.0, deadline - loop.time()))
    outcomes: list[KafkaError | None] = []
    for one in pending:
        if isinstance(one, KafkaError):
            outcomes.append(one)
        elif not one.done():
            # Failed when the producer is dropped; nobody waits for it any more.
            one.add_done_callback(_consume)
            outcomes.append(_no_ack())
        elif one.cancelled():
            outcomes.append(KafkaError("the send was cancelled"))
        else:
            failed = one.exception()
            outcomes.append(failed if isinstance(failed, KafkaError) or failed is None
                            else KafkaError(repr(failed)))
    return outcomes + [stopped or _no_ack()] * (len(plans) - len(outcomes))


def _refused(outcome: KafkaError | None) -> bool:
    """Kafka refused this record itself (too large, say); Kafka is fine."""
    return outcome is not None and refused_record(outcome)


def _no_ack() -> KafkaTimeoutError:
    return KafkaTimeoutError(f"no acknowledgement within {ACK_TIMEOUT_S:.0f}s")


def _consume(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


async def redrive(pipeline: Pipeline, source: str, selection: DeadLetterFilter, *,
                  refs: list[str] | None = None, dry_run: bool = False, window_s: int,
                  progress: Progress | None = None) -> RedriveSummary:
    """Re-drive the letters of `source` that match `selection` (or exactly `refs`);
    `progress(scanned, total, sent)` is called as the source is read."""
    described = f"{len(refs)} picked" if refs is not None else selection.describe()
    summary = RedriveSummary(source, described, dry_run)
    kept = f"nothing was re-driven from {source}; every letter is where it was"

    def seen(scanned: int, total: int) -> None:
        if progress is not None:
            progress(scanned, total, summary.sent)

    async with _kafka.reader(pipeline.kafka, kept=kept) as consumer:
        run = _Run(pipeline, summary, window_s, consumer)
        if dry_run:
            async for batch in _batches(pipeline, source, selection, refs, seen):
                run.count(await run.plan(batch))
            return summary
        async with _kafka.writer(pipeline.kafka, kept=kept) as producer:
            try:
                async for batch in _batches(pipeline, source, selection, refs, seen):
                    await run.send(producer, await run.plan(batch))
            except (KafkaError, OSError, KafkaUnavailableError) as error:
                # A reading client's own message ("nothing was changed") is not the run's.
                cause = (error.__cause__ or error) if isinstance(error, KafkaUnavailableError) \
                    else error
                summary.error = (
                    f"Kafka at {pipeline.kafka.bootstrap} failed ({type(cause).__name__}: "
                    f"{cause}); the {summary.sent} records counted as sent are in their "
                    "destination, every other letter is still where it was"
                )
    logger.info("re-drive from %s (%s): %d matched, %d sent%s", source, described,
                summary.matched, summary.sent,
                f"; stopped: {summary.error}" if summary.error else "")
    return summary


async def _batches(pipeline: Pipeline, source: str, selection: DeadLetterFilter,
                   refs: list[str] | None, seen: Callable[[int, int], None]
                   ) -> AsyncIterator[list[DeadLetter]]:
    """The letters to re-drive, BATCH at a time: the picked ones, or all that match."""
    if refs is not None:
        letters = await picked(pipeline, refs)
        for start in range(0, len(letters), BATCH):
            yield letters[start:start + BATCH]
        return
    pending: list[DeadLetter] = []
    async for letters in each_match(pipeline, source, selection, progress=seen):
        pending += letters
        while len(pending) >= BATCH:
            yield pending[:BATCH]
            pending = pending[BATCH:]
    if pending:
        yield pending
