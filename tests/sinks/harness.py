"""Running sinks for tests: the driver in this process, or `qikflow sink` as a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import duckdb

from qikflow.config import KafkaSettings
from sinks.base import Sink, SinkRecord
from sinks.driver import SinkDriver
from sinks.postgres import PostgresSink
from sinks.settings import SinkSettings

WAIT_S = 90.0


def fast_settings(**overrides: object) -> SinkSettings:
    """Small batches and short backoff, so tests see several batches and quick retries."""
    values: dict[str, object] = {
        "sink_batch_max_records": 50, "sink_batch_within_ms": 200,
        "sink_retry_initial_ms": 100, "sink_retry_max_ms": 2000,
    }
    values.update(overrides)
    return SinkSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running_driver(sink: Sink, settings: SinkSettings | None = None
                         ) -> AsyncIterator[SinkDriver]:
    """The driver consuming in a background task; stopped (and awaited) on exit."""
    driver = SinkDriver(sink, kafka=KafkaSettings(), settings=settings or fast_settings())
    task = asyncio.create_task(driver.run())
    try:
        yield driver
    finally:
        driver.stop.set()
        await asyncio.wait_for(task, 60)


async def wait_until(check: Callable[[], Awaitable[bool]], what: str,
                     timeout_s: float = WAIT_S) -> None:
    """Poll `check` until it holds; fail with `what` after a generous deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


async def count(url: str, sql: str) -> int:
    """One integer from the database, 0 while it cannot be reached."""
    try:
        connection = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return 0
    try:
        value = await connection.fetchval(sql)
        return int(value or 0)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await connection.close()


async def write_postgres(url: str, events: Sequence[Any]) -> None:
    """Store events with a PostgresSink of its own, as one batch, then close it."""
    sink = PostgresSink(url)
    await sink.setup()
    try:
        await sink.write([SinkRecord("t", 0, n, event) for n, event in enumerate(events)])
    finally:
        await sink.close()


def start_sink_process(
    name: str, env: dict[str, str], log: Path, *, command: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """`qikflow sink <name>` (or another `command`) in its own process, logging to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "qikflow", "--log-level", "INFO",
             *(command or ["sink", name])],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    process.terminate()
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(10)


def duck(sql: str) -> list[tuple[Any, ...]]:
    """Rows of one query in a fresh in-memory DuckDB, as a reader of the lake would run it."""
    with duckdb.connect() as db:
        rows: list[tuple[Any, ...]] = db.execute(sql).fetchall()
        return rows
