"""What a running worker made of each raw record: send bodies, get each one's outcome.

Every record the worker writes for a raw record carries that record's ingest headers, so
its receipt id: the events on the per-type topics, the body on `unknown`, the dead letter
on `dlq` (whole or a preview). `OutcomeReader.send` writes bodies to `<prefix>.raw` as the
ingest does and reads the worker's output topics until every body has an outcome, then
to the end of every partition, so an extra outcome written with the first is seen too.
One reader serves many calls (it keeps its consumer and its event loop), which keeps a
property test over the worker fast. The sinks' tests can extend `Outcome` with rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from ingest.record import RECEIPT_ID, RawRecord
from qikflow.topics import Topics
from streams.budget import WorkerBudget
from streams.events import Event
from streams.headers import SOURCE_TOPIC, header
from streams.notices import NOTICE_TYPES, NoticeEvent
from streams.parsers import Parsed, Unrecognised, parse_raw
from streams.settings import StreamsSettings
from streams.topics import event_topics
from tests.streams._worker import raw_record

OUTCOME_TIMEOUT_S = 120.0
BUDGET = WorkerBudget.from_settings(StreamsSettings())  # the defaults a user gets


@dataclass
class Outcome:
    """The records the worker wrote for one raw record, by topic."""

    record: RawRecord
    raw_partition: int
    raw_offset: int
    records: list[ConsumerRecord] = field(default_factory=list)

    def topics(self) -> set[str]:
        return {record.topic for record in self.records}

    def kind(self, topics: Topics) -> str:
        """`events`, `unknown`, `dlq`, `none`, or `mixed` (more than one of them: a bug)."""
        kinds = {"unknown" if topic == topics.unknown else "dlq" if topic == topics.dlq
                 else "events" for topic in self.topics()}
        if not kinds:
            return "none"
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def only(self, topic: str) -> ConsumerRecord:
        """The one record written to `topic`."""
        found = [record for record in self.records if record.topic == topic]
        assert len(found) == 1, [(r.topic, r.offset) for r in self.records]
        return found[0]


class OutcomeReader:
    """Sends bodies through the worker of `topics` at `bootstrap` and collects outcomes."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self._loop = asyncio.new_event_loop()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    def send(self, bodies: Iterable[bytes], timeout_s: float = OUTCOME_TIMEOUT_S
             ) -> list[Outcome]:
        """Each body's outcome, in the order given (a body without one after `timeout_s`
        has kind `none`)."""
        return self._loop.run_until_complete(self._send(list(bodies), timeout_s))

    def close(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                # A consumer idle between sends keeps fetching; stopping it while a fetch
                # backs off after a broker timeout re-raises the fetch task's cancellation.
                with contextlib.suppress(asyncio.CancelledError):
                    self._loop.run_until_complete(client.stop())
        self._loop.close()

    async def _start(self) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
        if self._consumer is None or self._producer is None:
            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5,
                                              max_request_size=8 * 1024 * 1024)
            await self._producer.start()
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                              enable_auto_commit=False)
            await self._consumer.start()
            names = [*event_topics(self.topics), self.topics.unknown, self.topics.dlq]
            partitions = [TopicPartition(name, partition) for name in names
                          for partition in await self._partitions(name)]
            self._consumer.assign(partitions)
            await self._consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the positions now: what comes later is read
                await self._consumer.position(tp)
        return self._consumer, self._producer

    async def _partitions(self, topic: str) -> set[int]:
        assert self._consumer is not None
        for _ in range(100):  # the worker created the topic: its metadata comes quickly
            await self._consumer._client.force_metadata_update()
            found = self._consumer.partitions_for_topic(topic)
            if found:
                return set(found)
        raise AssertionError(f"{topic} has no partitions: did the worker create it?")

    async def _send(self, bodies: list[bytes], timeout_s: float) -> list[Outcome]:
        consumer, producer = await self._start()
        outcomes: dict[str, Outcome] = {}
        for body in bodies:
            record = RawRecord(body=body, receipt_id=str(uuid.uuid4()),
                               received_at_ms=int(time.time() * 1000), account="acme",
                               content_type="application/json")
            sent = await producer.send_and_wait(self.topics.raw, body, headers=record.headers())
            outcomes[record.receipt_id] = Outcome(record, sent.partition, sent.offset)
        # What each body should give, worked out once (a body may be near 1 MiB).
        expected = {receipt: expected_kind(outcome.record.body)
                    for receipt, outcome in outcomes.items()}
        deadline = time.monotonic() + timeout_s
        while (time.monotonic() < deadline
               and not all(self._complete(outcome, *expected[receipt])
                           for receipt, outcome in outcomes.items())):
            self._collect(await consumer.getmany(timeout_ms=300), outcomes)
        # Then to the current end of every partition: what was written with them is in.
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while await self._behind(ends) and time.monotonic() < deadline:
            self._collect(await consumer.getmany(timeout_ms=300), outcomes)
        return list(outcomes.values())

    def _complete(self, outcome: Outcome, kind: str, event_ids: set[str]) -> bool:
        """Whether `outcome` holds what its body should give (`kind`, `event_ids`): every
        event, when it has events (they may come from different keyed partitions, one after
        another), else one record. A wrong outcome is never complete: it shows once the
        time is up."""
        if kind != "events":
            return bool(outcome.records)
        routed = {read_routed(record)[0] for record in outcome.records
                  if record.topic not in (self.topics.unknown, self.topics.dlq)}
        return routed >= event_ids

    async def _behind(self, ends: dict[TopicPartition, int]) -> bool:
        assert self._consumer is not None
        for tp, end in ends.items():
            if await self._consumer.position(tp) < end:
                return True
        return False

    @staticmethod
    def _collect(fetched: dict[TopicPartition, list[ConsumerRecord]],
                 outcomes: dict[str, Outcome]) -> None:
        for records in fetched.values():
            for record in records:
                receipt = next((bytes(v).decode() for k, v in record.headers
                                if k == RECEIPT_ID), "")
                if receipt in outcomes:
                    outcomes[receipt].records.append(record)


def expected_kind(body: bytes) -> tuple[str, set[str]]:
    """The outcome the worker must give `body`, and the event ids it must route."""
    outcome = parse_raw(raw_record(body))
    if isinstance(outcome, Parsed):
        routed: list[Event | NoticeEvent] = [*outcome.events, *outcome.notices]
        if any(len(event.to_json()) > BUDGET.event_value_bytes for event in routed):
            return "dlq", set()
        return "events", {event.event_id for event in routed}
    return ("unknown" if isinstance(outcome, Unrecognised) else "dlq"), set()


def check_outcome(topics: Topics, outcome: Outcome) -> None:
    """The worker gave `outcome.record` the one outcome `parse_raw` and the budget say."""
    kind, event_ids = expected_kind(outcome.record.body)
    assert outcome.kind(topics) == kind, (kind, [(r.topic, r.headers) for r in outcome.records])
    for record in outcome.records:
        if kind == "events":
            event_id, event_type = read_routed(record)  # every consumer can read it back
            assert event_id in event_ids
            assert record.topic == topics.event(event_type)
        elif kind == "unknown":
            assert record.value == outcome.record.body
            assert header(record.headers, "qikflow-reason")
        else:
            assert len(record.value or b"") <= BUDGET.dead_letter_bytes
            assert header(record.headers, SOURCE_TOPIC) == topics.raw
    if kind == "events":
        assert {read_routed(r)[0] for r in outcome.records} == event_ids


def read_routed(record: ConsumerRecord) -> tuple[str, str]:
    """The event id and type of a routed record: an event, or a notice on its topic."""
    if any(record.topic.endswith(f".{notice_type}") for notice_type in NOTICE_TYPES):
        notice = NoticeEvent.from_json(record.value)
        return notice.event_id, notice.type
    event = Event.from_json(record.value)
    return event.event_id, event.type
