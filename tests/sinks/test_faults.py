"""Fault drills: PostgreSQL down for 20 seconds mid-stream, and the sink killed with SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from qikflow.local.postgres import LocalPostgres
from sinks.postgres import PostgresSink
from streams.events import Event
from tests._ports import free_port
from tests.sinks.events import T0, produce, status, text_message
from tests.sinks.harness import (
    count,
    fast_settings,
    running_driver,
    start_sink_process,
    stop_process,
    wait_until,
)

OUTAGE_S = 20


def _traffic(tag: str, start: int, stop: int) -> list[Event]:
    """Per message n: an incoming text, and sent + delivered of an outbound message."""
    events: list[Event] = []
    for n in range(start, stop):
        at = T0 + timedelta(seconds=n)
        events += [
            text_message(f"{tag}-in-{n}", f"+9198{n % 97:08d}", at=at),
            status(f"{tag}-out-{n}", "sent", at=at),
            status(f"{tag}-out-{n}", "delivered", at=at + timedelta(seconds=5)),
        ]
    return events


@pytest.fixture
def dedicated_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL of this test's own, so stopping it disturbs no other test."""
    server = LocalPostgres(home=Path(".qikflow"), name=f"pg-drill-{uuid.uuid4().hex[:8]}",
                           port=free_port())
    server.start()
    yield server
    server.wipe()


async def _landed(url: str, messages: int) -> bool:
    """Every row is there (topics are consumed independently: check each table)."""
    return (await count(url, "SELECT count(*) FROM inbound_messages") >= messages
            and await count(url, "SELECT count(*) FROM message_status_events") >= 2 * messages
            and await count(url, "SELECT count(*) FROM outbound_messages "
                                 "WHERE status = 'delivered'") >= messages)


async def _assert_exactly(url: str, messages: int) -> None:
    assert await count(url, "SELECT count(*) FROM inbound_messages") == messages
    assert await count(url, "SELECT count(*) FROM message_status_events") == 2 * messages
    assert await count(url, "SELECT count(*) FROM outbound_messages") == messages
    assert await count(url, "SELECT count(*) FROM outbound_messages WHERE status = 'delivered' "
                            "AND sent_at IS NOT NULL AND delivered_at > sent_at") == messages


@pytest.mark.slow
async def test_postgres_down_for_20_seconds_mid_stream_loses_nothing(
    kafka_bootstrap: str, topic_prefix: str, dedicated_postgres: LocalPostgres
) -> None:
    url = dedicated_postgres.url()
    async with running_driver(PostgresSink(url), fast_settings()) as driver:
        await produce(kafka_bootstrap, topic_prefix, _traffic("a", 0, 300))
        await wait_until(lambda: _landed(url, 300), "the first 300 messages")

        await asyncio.to_thread(dedicated_postgres.stop)
        await produce(kafka_bootstrap, topic_prefix, _traffic("b", 300, 800))
        await asyncio.sleep(OUTAGE_S)
        retries_during_outage = _retries(driver)
        await asyncio.to_thread(dedicated_postgres.start)

        await wait_until(lambda: _landed(url, 800), "all 800 messages after the outage")
    assert retries_during_outage > 0
    await _assert_exactly(url, 800)


def _retries(driver: object) -> float:
    registry = driver.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value("qikflow_sink_write_retries_total", {"sink": "postgres"})
    return float(value or 0)


@pytest.mark.slow
async def test_sink_killed_with_sigkill_and_restarted_loses_nothing(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, tmp_path: Path
) -> None:
    env = {
        "QIKFLOW_TOPIC_PREFIX": topic_prefix, "QIKFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "QIKFLOW_DATABASE_URL": database_url, "QIKFLOW_HOME": str(tmp_path / "home"),
        "QIKFLOW_SINK_BATCH_MAX_RECORDS": "100", "QIKFLOW_SINK_BATCH_WITHIN_MS": "100",
    }
    total = 1500
    log = tmp_path / "sink.log"
    killed = asyncio.Event()
    first = start_sink_process("postgres", env, log)
    try:
        # Traffic flows before, during and after the kill: half the waves go out before it.
        sender = asyncio.create_task(
            _send_in_waves(kafka_bootstrap, topic_prefix, total, killed))
        await wait_until(
            lambda: _at_least(database_url, "SELECT count(*) FROM inbound_messages", 100),
            "the first rows from the first sink process")
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
        killed.set()
        await sender
    finally:
        if first.poll() is None:
            first.kill()
    second = start_sink_process("postgres", env, log)
    try:
        await wait_until(lambda: _landed(database_url, total), "every message after restart")
        await _assert_exactly(database_url, total)
    finally:
        assert stop_process(second) == 0, log.read_text()[-3000:]


async def _send_in_waves(bootstrap: str, prefix: str, total: int, killed: asyncio.Event,
                         waves: int = 10) -> None:
    step = total // waves
    for wave, start in enumerate(range(0, total, step)):
        if wave == waves // 2:
            await killed.wait()
        await produce(bootstrap, prefix, _traffic("k", start, min(start + step, total)))
        await asyncio.sleep(0.2)


async def _at_least(url: str, sql: str, expected: int) -> bool:
    return await count(url, sql) >= expected
