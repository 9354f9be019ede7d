"""bench/sinks: rows/s into PostgreSQL and events/s into the lake, on the real services.

Usage: `make bench`, or with Kafka and PostgreSQL running:
    QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092 QIKFLOW_DATABASE_URL=postgresql://... \\
    .venv/bin/python -m bench.sinks [--events 50000]
Two figures per store: the sink's `write` alone, and the whole driver (Kafka fetch, decode,
write, commit) draining a topic backlog. The traffic is one incoming text per three status
events (sent, delivered, read of one outbound message), like real WhatsApp traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench._report import print_table, write_results
from qikflow.config import KafkaSettings
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


async def bench_write(sink: Sink, events: list[Event], batch: int) -> float:
    """Events per second through `sink.write` alone."""
    records = [SinkRecord("bench", 0, n, event) for n, event in enumerate(events)]
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        await sink.write(records[start:start + batch])
    return len(records) / (time.perf_counter() - started)


async def bench_driver(sink: Sink, events: list[Event], batch: int, bootstrap: str) -> float:
    """Events per second for the driver draining a backlog of `events` from Kafka."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap=bootstrap, QIKFLOW_TOPIC_PREFIX=prefix)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                max_batch_size=1_048_576)
    await producer.start()
    try:
        topics = Topics.from_settings(kafka)
        for event in events:
            await producer.send(topics.event(event.type), event.to_json(), key=event.key)
        await producer.flush()
    finally:
        await producer.stop()
    settings = SinkSettings(sink_batch_max_records=batch, sink_batch_within_ms=500)
    driver = SinkDriver(sink, kafka=kafka, settings=settings)
    task = asyncio.create_task(driver.run())
    registry = driver.metrics.registry
    labels = {"sink": sink.name}
    started: float | None = None
    first = 0.0
    while True:
        written = registry.get_sample_value("qikflow_sink_written_records_total", labels) or 0
        if started is None and written > 0:
            started = time.perf_counter()  # from the first write: excludes group join
            first = written
        if written >= len(events):
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    driver.stop.set()
    await task
    return (len(events) - first) / elapsed if elapsed > 0 else float("nan")


async def main(total: int, batches: list[int]) -> None:
    bootstrap = os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    admin_url = os.environ.get("QIKFLOW_DATABASE_URL")
    if not admin_url:
        server = LocalPostgres(home=Path(".qikflow"), name="pg-test", port=54330)
        server.start()
        admin_url = server.url()
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
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
        rows.append(["postgres", str(batch), f"{write_rate:,.0f}", f"{driver_rate:,.0f}"])
        figures[f"postgres_write_events_per_s_batch_{batch}"] = write_rate
        figures[f"postgres_driver_events_per_s_batch_{batch}"] = driver_rate
        with tempfile.TemporaryDirectory() as lake_dir:
            lake = LakeSink(Path(lake_dir), roll_bytes=64 * 1024 * 1024, roll_interval_s=300,
                            compact_min_files=6)
            await lake.setup()
            lake_write = await bench_write(lake, traffic(total, "w"), batch)
            await lake.close()
            lake_driver = await bench_driver(
                LakeSink(Path(lake_dir) / "d", roll_bytes=64 * 1024 * 1024, roll_interval_s=300,
                         compact_min_files=6), traffic(total, "d"), batch, bootstrap)
        rows.append(["lake", str(batch), f"{lake_write:,.0f}", f"{lake_driver:,.0f}"])
        figures[f"lake_write_events_per_s_batch_{batch}"] = lake_write
        figures[f"lake_driver_events_per_s_batch_{batch}"] = lake_driver
    print(f"\n{total} events per run (1 incoming text : 3 statuses); PostgreSQL rows per "
          "event: 1 inbound row, or 1 status row + 1 outbound upsert\n")
    print_table(["sink", "batch", "write events/s", "driver events/s (Kafka -> store)"], rows)
    write_results("sinks", {"events": total, "batches": batches, **figures})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batches", default="1000,5000", help="comma-separated batch sizes")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, [int(b) for b in arguments.batches.split(",")]))
