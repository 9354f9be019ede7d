"""bench/sinks: rows/s into PostgreSQL and events/s into the lake, on the real services.

Usage: `make bench`, or with Kafka and PostgreSQL running:
    QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092 QIKFLOW_DATABASE_URL=postgresql://... \\
    .venv/bin/python -m bench.sinks [--events 50000]
Two figures per store, measured in the same run: the sink's `write` alone, and the whole
driver (Kafka fetch, decode, write, commit) draining a topic backlog; their ratio, and the
CPU this process (the sink's: its Kafka consumer, decode and write) spent per event in each.
The traffic is one incoming text per three status events (sent, delivered, read of one
outbound message), like real WhatsApp traffic. Each measurement starts as `qikflow sink`
does (sinks/runner.py): with what exists frozen out of the garbage collector's scans, here
the bench's own hundreds of thousands of traffic objects, which a sink process does not
hold (without it, the driver's collections scanned them, 20-40 us per event).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench._kafka import delete_topics
from bench._report import print_table, write_results
from qikflow.config import KafkaSettings
from qikflow.gc_tuning import tune_gc
from qikflow.local.databases import create_database, drop_database
from qikflow.local.postgres import LocalPostgres
from qikflow.topics import Topics
from sinks.base import Sink, SinkRecord
from sinks.driver import SinkDriver
from sinks.lake import LakeSink
from sinks.postgres import PostgresSink
from sinks.settings import SinkSettings
from streams.events import Event, StatusContent, TextContent

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def traffic(count: int, tag: str) -> list[Event]:
    events: list[Event] = []
    for n in range(count // 4):
        at = T0 + timedelta(milliseconds=n * 50)
        events.append(Event(
            event_id=f"{tag}-in-{n}", type="message.text", kind="message", format="qikchat",
            receipt_ids=[f"r{n}"], received_at=at, occurred_at=at, source="qikchat",
            account="bench", business_number="+911140000000",
            contact_number=f"+9198{n % 5000:08d}", contact_name="Asha",
            message_id=f"{tag}-in-{n}", content=TextContent(body="Is my order shipped? " * 3),
            raw={"id": f"{tag}-in-{n}", "type": "text", "text": {"body": "Is my order shipped?"}},
        ))
        for offset_s, state in enumerate(("sent", "delivered", "read")):
            events.append(Event(
                event_id=f"{tag}-out-{n}:{state}", type=f"status.{state}", kind="status",
                format="qikchat", receipt_ids=[f"r{n}{state}"], received_at=at,
                occurred_at=at + timedelta(seconds=offset_s), source="qikchat", account="bench",
                business_number="+911140000000", contact_number=f"+9197{n % 5000:08d}",
                contact_name=None, message_id=f"{tag}-out-{n}",
                content=StatusContent(status=state), raw={"id": f"{tag}-out-{n}", "status": state},
            ))
    return events


@dataclass(frozen=True, slots=True)
class Rate:
    """Events per second, and this process's CPU microseconds per event (all threads)."""

    events_per_s: float
    cpu_us_per_event: float


async def bench_write(sink: Sink, events: list[Event], batch: int) -> Rate:
    """Events per second through `sink.write` alone."""
    records = [SinkRecord("bench", 0, n, event) for n, event in enumerate(events)]
    tune_gc()
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(records), batch):
        await sink.write(records[start:start + batch])
    cpu_s = time.process_time() - cpu
    return Rate(len(records) / (time.perf_counter() - started), cpu_s / len(records) * 1e6)


async def bench_driver(sink: Sink, events: list[Event], batch: int, bootstrap: str) -> Rate:
    """Events per second for the driver draining a backlog of `events` from Kafka; its
    topics are deleted afterwards."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap=bootstrap, QIKFLOW_TOPIC_PREFIX=prefix)
    try:
        return await _drain(sink, events, batch, kafka)
    finally:
        await delete_topics(kafka, (prefix,))


async def _drain(sink: Sink, events: list[Event], batch: int, kafka: KafkaSettings) -> Rate:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=20,
                                max_batch_size=1_048_576)
    await producer.start()
    try:
        topics = Topics.from_settings(kafka)
        for event in events:
            await producer.send(topics.event(event.type), event.to_json(), key=event.key)
        await producer.flush()
    finally:
        await producer.stop()
    tune_gc()
    settings = SinkSettings(sink_batch_max_records=batch, sink_batch_within_ms=500)
    driver = SinkDriver(sink, kafka=kafka, settings=settings)
    task = asyncio.create_task(driver.run())
    registry = driver.metrics.registry
    labels = {"sink": sink.name}
    started: float | None = None
    cpu = 0.0
    first = 0.0
    while True:
        written = registry.get_sample_value("qikflow_sink_written_records_total", labels) or 0
        if started is None and written > 0:
            # From the first write: excludes the group join.
            started, cpu = time.perf_counter(), time.process_time()
            first = written
        if written >= len(events):
            break
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    cpu_s = time.process_time() - cpu
    driver.stop.set()
    await task
    if elapsed <= 0:
        return Rate(float("nan"), float("nan"))
    return Rate((len(events) - first) / elapsed, cpu_s / (len(events) - first) * 1e6)


async def main(total: int, batches: list[int]) -> None:
    bootstrap = os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    admin_url = os.environ.get("QIKFLOW_DATABASE_URL")
    if not admin_url:
        server = LocalPostgres(home=Path(".qikflow"), name="pg-test", port=54330)
        server.start()
        admin_url = server.url()
    rows: list[list[str]] = []
    figures: dict[str, float] = {}

    def record(store: str, batch: int, write: Rate, driver: Rate) -> None:
        rows.append([store, str(batch), f"{write.events_per_s:,.0f}",
                     f"{driver.events_per_s:,.0f}",
                     f"{driver.events_per_s / write.events_per_s:.2f}",
                     f"{write.cpu_us_per_event:.0f}", f"{driver.cpu_us_per_event:.0f}"])
        figures[f"{store}_write_events_per_s_batch_{batch}"] = write.events_per_s
        figures[f"{store}_driver_events_per_s_batch_{batch}"] = driver.events_per_s
        figures[f"{store}_driver_to_write_ratio_batch_{batch}"] = (
            driver.events_per_s / write.events_per_s)
        figures[f"{store}_write_cpu_us_per_event_batch_{batch}"] = write.cpu_us_per_event
        figures[f"{store}_driver_cpu_us_per_event_batch_{batch}"] = driver.cpu_us_per_event

    for batch in batches:
        name, url = await create_database(admin_url, "bench")
        try:
            sink = PostgresSink(url)
            await sink.setup()
            write_rate = await bench_write(sink, traffic(total, "w"), batch)
            await sink.close()
            driver_rate = await bench_driver(PostgresSink(url), traffic(total, "d"), batch,
                                             bootstrap)
        finally:
            await drop_database(admin_url, name)
        record("postgres", batch, write_rate, driver_rate)
        with tempfile.TemporaryDirectory() as lake_dir:
            lake = LakeSink(Path(lake_dir), roll_bytes=64 * 1024 * 1024, roll_interval_s=300,
                            compact_min_files=6)
            await lake.setup()
            lake_write = await bench_write(lake, traffic(total, "w"), batch)
            await lake.close()
            lake_driver = await bench_driver(
                LakeSink(Path(lake_dir) / "d", roll_bytes=64 * 1024 * 1024, roll_interval_s=300,
                         compact_min_files=6), traffic(total, "d"), batch, bootstrap)
        record("lake", batch, lake_write, lake_driver)
    print(f"\n{total} events per run (1 incoming text : 3 statuses); PostgreSQL rows per "
          "event: 1 inbound row, or 1 status row + 1 outbound upsert; CPU: this process "
          "(the sink's), all threads, per event\n")
    print_table(["sink", "batch", "write events/s", "driver events/s (Kafka -> store)",
                 "driver/write", "write CPU us/ev", "driver CPU us/ev"], rows)
    write_results("sinks", {"events": total, "batches": batches, **figures})

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batches", default="1000,5000", help="comma-separated batch sizes")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, [int(b) for b in arguments.batches.split(",")]))
