"""End to end: webhook bodies in `<prefix>.raw`, through `qikflow worker`, to PostgreSQL rows."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from ingest.record import RawRecord
from tests._ports import free_port
from tests.sinks.harness import count, start_sink_process, stop_process, wait_until
from tests.streams._worker import CUSTOMER, text_body


def status_update(message_id: str, state: str, at: str, **extra: object) -> bytes:
    times = {"sentAt": "2026-11-20T12:52:26.101Z"}
    if state in ("delivered", "read"):
        times["deliveredAt"] = "2026-11-20T12:52:27.930Z"
    if state == "read":
        times["readAt"] = at
    return orjson.dumps({
        "event": "whatsapp:message:status",
        "payload": {
            "id": message_id, "name": "whatsapp",
            "contacts": [{"profile": {"name": ""}, "to": "+918080808080"}],
            "message": {"type": "template", "status": state, **times,
                        "processedAt": "2026-11-20T12:52:25.222Z", "lastUpdatedAt": at, **extra},
        },
    })


async def send_raw(bootstrap: str, topic: str, bodies: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for body in bodies:
            # Received after the statuses it carries happened, as always in real life.
            record = RawRecord(body=body, receipt_id=str(uuid.uuid4()),
                               received_at_ms=1_795_179_600_000, account="acme",
                               content_type="application/json")
            await producer.send(topic, body, headers=record.headers())
        await producer.flush()
    finally:
        await producer.stop()


async def test_webhooks_in_raw_become_rows(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, tmp_path: Path
) -> None:
    text = text_body("wamid.IN1", "Is my order #4411 shipped?")
    bodies = [
        text, text,  # Qikchat resent the webhook: one row
        status_update("OUT1", "read", "2026-11-20T12:53:10.000Z"),  # read before delivered
        status_update("OUT1", "delivered", "2026-11-20T12:52:27.930Z"),
        status_update("OUT1", "sent", "2026-11-20T12:52:26.101Z"),
    ]
    await send_raw(kafka_bootstrap, f"{topic_prefix}.raw", bodies)
    env = {
        "QIKFLOW_TOPIC_PREFIX": topic_prefix, "QIKFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "QIKFLOW_DATABASE_URL": database_url, "QIKFLOW_HOME": str(tmp_path / "home"),
        "QIKFLOW_STREAMS_WEB_PORT": str(free_port()),
    }
    worker = start_sink_process("worker", env, tmp_path / "worker.log", command=["worker"])
    sink = start_sink_process("postgres", env, tmp_path / "sink.log")
    try:
        await wait_until(lambda: _landed(database_url), "the webhook rows", timeout_s=150)
    finally:
        stop_process(sink)
        stop_process(worker, timeout_s=60)

    connection = await asyncpg.connect(database_url)
    try:
        inbound = await connection.fetch("SELECT message_id, contact, text FROM inbound_messages")
        outbound = await connection.fetchrow("SELECT * FROM outbound_messages")
    finally:
        await connection.close()
    assert [tuple(row) for row in inbound] == [
        ("wamid.IN1", CUSTOMER, "Is my order #4411 shipped?")]
    assert outbound is not None
    assert outbound["status"] == "read"
    assert outbound["delivered_at"] is not None
    assert outbound["read_at"] is not None
    assert outbound["read_at"] > outbound["delivered_at"] > outbound["sent_at"]


async def _landed(url: str) -> bool:
    return (await count(url, "SELECT count(*) FROM inbound_messages") == 1
            and await count(url, "SELECT count(*) FROM message_status_events") == 3)
