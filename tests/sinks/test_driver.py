"""The shared driver on the real broker and PostgreSQL: rows land once, poison is set aside."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from qikflow.config import KafkaSettings
from sinks.base import Sink, SinkRecord
from sinks.driver import SinkDriver
from sinks.postgres import PostgresSink
from streams.events import Event, OptOutEvent
from tests.fixtures.kafka import consume
from tests.sinks.events import T0, as_json, optout, produce, status, text_message
from tests.sinks.harness import count, fast_settings, running_driver, wait_until


async def test_events_in_topics_become_rows_once(
    kafka_bootstrap: str, topic_prefix: str, database_url: str
) -> None:
    read_first = [
        status("out-1", "read", at=T0 + timedelta(minutes=3)),
        status("out-1", "sent", at=T0),
        status("out-1", "delivered", at=T0 + timedelta(minutes=1)),
    ]
    duplicate = text_message("in-1", body="hi")
    events: list[Event | OptOutEvent] = [duplicate, duplicate, text_message("in-2"), *read_first,
              status("out-1", "read", at=T0 + timedelta(minutes=3)),
              optout("in-2", "+919800000001")]
    await produce(kafka_bootstrap, topic_prefix, events)

    async with running_driver(PostgresSink(database_url)):
        await wait_until(lambda: _all_landed(database_url), "inbound, statuses and opt-out")

    connection = await asyncpg.connect(database_url)
    try:
        inbound = await connection.fetch("SELECT message_id, text FROM inbound_messages "
                                         "ORDER BY message_id")
        outbound = await connection.fetchrow("SELECT * FROM outbound_messages")
        statuses = await connection.fetchval("SELECT count(*) FROM message_status_events")
        optouts = await connection.fetch("SELECT contact, message_id FROM contact_optouts")
    finally:
        await connection.close()
    assert [(row["message_id"], row["text"]) for row in inbound] == [
        ("in-1", "hi"), ("in-2", "hello")]
    assert statuses == 3
    assert outbound is not None
    assert outbound["status"] == "read"
    assert outbound["sent_at"] == T0
    assert outbound["delivered_at"] == T0 + timedelta(minutes=1)
    assert outbound["read_at"] == T0 + timedelta(minutes=3)
    assert not outbound["failed"]
    assert [(row["contact"], row["message_id"]) for row in optouts] == [
        ("+919800000001", "in-2")]


async def _all_landed(url: str) -> bool:
    return (await count(url, "SELECT count(*) FROM inbound_messages") == 2
            and await count(url, "SELECT count(*) FROM message_status_events") == 3
            and await count(url, "SELECT count(*) FROM contact_optouts") == 1)


async def test_poison_records_go_to_the_sink_dlq_and_the_rest_land(
    kafka_bootstrap: str, topic_prefix: str, database_url: str
) -> None:
    good = [text_message(f"ok-{n}") for n in range(30)]
    # No PostgreSQL bigint holds this code: the record decodes but can never be written.
    unwritable = status("big-1", "failed", error_code=2**70, error_title="too big")
    undecodable = b'{"not": "an event"'
    events: list[Event | OptOutEvent] = [*good[:15], unwritable, *good[15:]]
    await produce(kafka_bootstrap, topic_prefix, events,
                  extra=[(f"{topic_prefix}.message.text", undecodable)])

    async with running_driver(PostgresSink(database_url)) as driver:
        await wait_until(
            lambda: _count_is(database_url, "SELECT count(*) FROM inbound_messages", 30),
            "the 30 good messages")
        dead = await consume(kafka_bootstrap, [f"{topic_prefix}.sink.dlq"], expected=2)

    assert await count(database_url, "SELECT count(*) FROM message_status_events") == 0
    by_reason = {dict(record.headers)["qikflow-reason"]: record for record in dead}
    assert sorted(by_reason) == [b"decode", b"write"]
    assert by_reason[b"decode"].value == undecodable
    assert by_reason[b"write"].value == as_json(unwritable)
    assert by_reason[b"write"].key == unwritable.key
    headers = dict(by_reason[b"write"].headers)
    assert headers["qikflow-failed-sink"] == b"postgres"
    assert headers["qikflow-source-topic"] == f"{topic_prefix}.status.failed".encode()
    assert b"SQLSTATE" in headers["qikflow-error"]
    assert len(dead) == 2
    written = driver.metrics.registry.get_sample_value(
        "qikflow_sink_written_records_total", {"sink": "postgres"})
    assert written is not None and written >= 30


async def _count_is(url: str, sql: str, expected: int) -> bool:
    return await count(url, sql) == expected


class _Batches(Sink):
    """Records the size of each batch the driver hands it; stores nothing."""

    name = "batches"

    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def setup(self) -> None:
        return None

    async def write(self, batch: list[SinkRecord]) -> None:
        self.sizes.append(len(batch))

    async def close(self) -> None:
        return None


async def test_a_record_that_arrives_alone_is_written_at_once_and_a_backlog_fills_batches(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Caught up, the driver does not wait out `sink_batch_within_ms` (here far longer than
    the test may take) for more; behind, it fills batches up to the maximum."""
    sink = _Batches()
    settings = fast_settings(sink_batch_max_records=100, sink_batch_within_ms=600_000)
    async with running_driver(sink, settings):
        await produce(kafka_bootstrap, topic_prefix, [text_message("alone-1")])
        await wait_until(lambda: _written(sink, 1), "the lone record, well before 600 s")
        await produce(kafka_bootstrap, topic_prefix, [text_message("alone-2")])
        await wait_until(lambda: _written(sink, 2), "the second lone record")
    assert sink.sizes == [1, 1]

    backlog = _Batches()
    await produce(kafka_bootstrap, topic_prefix,
                  [text_message(f"backlog-{n}") for n in range(450)])
    # The same group: it goes on after the two records the first driver committed.
    async with running_driver(backlog, fast_settings(sink_batch_max_records=100)):
        await wait_until(lambda: _written(backlog, 450), "the backlog")
    assert sum(backlog.sizes) == 450
    assert max(backlog.sizes) == 100
    assert sum(size == 100 for size in backlog.sizes) >= 3


async def _written(sink: _Batches, records: int) -> bool:
    return sum(sink.sizes) >= records


class _Held(Sink):
    """Holds each write until released; records the batches and how many were written at
    once."""

    name = "held"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sizes: list[int] = []
        self.writing = 0
        self.most_writing = 0

    async def setup(self) -> None:
        return None

    async def write(self, batch: list[SinkRecord]) -> None:
        self.writing += 1
        self.most_writing = max(self.most_writing, self.writing)
        try:
            self.sizes.append(len(batch))
            await self.release.wait()
        finally:
            self.writing -= 1

    async def close(self) -> None:
        return None


async def test_one_batch_is_written_at_a_time_and_committed_only_once_written(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The driver decodes the next batch while the store writes one, but writes one batch at
    a time, and commits a batch only once it is written."""
    sink = _Held()
    await produce(kafka_bootstrap, topic_prefix,
                  [text_message(f"held-{n}") for n in range(120)])
    async with running_driver(sink, fast_settings(sink_batch_max_records=50)) as driver:
        await wait_until(lambda: _writing(sink), "the first write")
        assert await _committed(kafka_bootstrap, driver.group_id) == 0
        sink.release.set()
        await wait_until(lambda: _handed(sink, 120), "every record written")
        await wait_until(lambda: _committed_all(kafka_bootstrap, driver.group_id, 120),
                         "every record committed")
    assert sink.most_writing == 1
    assert max(sink.sizes) == 50


class _Logged(Sink):
    """Writes nothing; logs when each batch's write starts and ends."""

    name = "logged"

    def __init__(self, log: list[tuple[str, frozenset[tuple[str, int, int]]]]) -> None:
        self.log = log
        self.second_write = asyncio.Event()

    async def setup(self) -> None:
        return None

    async def write(self, batch: list[SinkRecord]) -> None:
        records = frozenset((r.topic, r.partition, r.offset) for r in batch)
        self.log.append(("write", records))
        if sum(1 for step, _ in self.log if step == "write") == 2:
            self.second_write.set()
        await asyncio.sleep(0.05)
        self.log.append(("written", records))

    async def close(self) -> None:
        return None


async def test_the_next_write_overlaps_a_slow_commit_and_commits_keep_their_order(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A commit on its way to Kafka does not hold up the next batch's write; yet every
    commit comes after its own write and after the commit of the batch before. The first
    commit is held until the second write begins."""
    log: list[tuple[str, frozenset[tuple[str, int, int]]]] = []
    sink = _Logged(log)
    await produce(kafka_bootstrap, topic_prefix,
                  [text_message(f"order-{n}") for n in range(150)])
    async with running_driver(sink, fast_settings(sink_batch_max_records=50)) as driver:
        commit = driver._commit

        async def slow_commit(consumer: Any, messages: list[Any]) -> None:
            records = frozenset((m.topic, m.partition, m.offset) for m in messages)
            log.append(("commit", records))
            if sum(1 for step, _ in log if step == "commit") == 1:
                # The first commit is slow: it ends only once the second write has begun
                # (a driver that waits for it would fail below, after this minute).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sink.second_write.wait(), 60)
            await commit(consumer, messages)
            log.append(("committed", records))

        driver._commit = slow_commit  # type: ignore[method-assign]
        await wait_until(lambda: _committed_all(kafka_bootstrap, driver.group_id, 150),
                         "every record committed")
    writes = [records for step, records in log if step == "write"]
    commits = [records for step, records in log if step == "commit"]
    assert len(writes) >= 3 and commits == writes, "one commit per write, in write order"
    at = {(step, records): index for index, (step, records) in enumerate(log)}
    for previous, batch in zip(writes, writes[1:], strict=False):
        assert at[("commit", batch)] > at[("written", batch)], "a commit after its write"
        assert at[("commit", batch)] > at[("committed", previous)], "commits in order"
        assert at[("write", batch)] > at[("written", previous)], "one write at a time"
    assert at[("write", writes[1])] < at[("committed", writes[0])], \
        "the second write waited for the first commit"


async def test_a_driver_cancelled_mid_write_ends_and_commits_nothing(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A write that would never end (a store that hangs) does not hold up a cancelled
    driver, and its records stay uncommitted for the next start."""
    sink = _Held()
    await produce(kafka_bootstrap, topic_prefix,
                  [text_message(f"hung-{n}") for n in range(120)])
    driver = SinkDriver(sink, kafka=KafkaSettings(),
                        settings=fast_settings(sink_batch_max_records=50))
    task = asyncio.create_task(driver.run())
    await wait_until(lambda: _writing(sink), "the first write")
    task.cancel()
    await asyncio.wait_for(asyncio.wait([task]), 60)
    assert task.cancelled()
    assert sink.writing == 0
    assert await _committed(kafka_bootstrap, driver.group_id) == 0


async def _writing(sink: _Held) -> bool:
    return sink.writing > 0


async def _handed(sink: _Held, records: int) -> bool:
    return sum(sink.sizes) >= records


async def _committed(bootstrap: str, group_id: str) -> int:
    """Records committed by the group, over every partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for meta in offsets.values())


async def _committed_all(bootstrap: str, group_id: str, records: int) -> bool:
    return await _committed(bootstrap, group_id) >= records
