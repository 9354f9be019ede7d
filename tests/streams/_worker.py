"""Running `qikflow worker` as a subprocess for tests, feeding `<prefix>.raw`, reading outputs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ingest.record import RawRecord
from streams import headers as names
from tests._ports import free_port
from tests.fixtures.kafka import consume

REPO = Path(__file__).resolve().parents[2]
READY_S = 120.0
# The per-type topics of one prefix, for `read` (format with the prefix); as
# `Topics.events_pattern`: `message.state` holds states, not events.
EVENTS_PATTERN = r"^{}\.(message\.(?!state$)|status\.)[a-z0-9_]+$"
# Fewer partitions than production: each test prefix creates ~25 topics on a shared broker.
TEST_PARTITIONS = 3
CUSTOMER = "+919876543210"


@dataclass
class WorkerProcess:
    """One `qikflow worker --index N` subprocess with its log and metrics port."""

    index: int
    process: subprocess.Popen[bytes]
    log: Path
    web_port: int

    def metrics(self) -> dict[str, float]:
        """The worker's counters: `name{labels}` -> value (empty if it does not answer)."""
        url = f"http://127.0.0.1:{self.web_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=30)


@dataclass
class WorkerCluster:
    """Workers of one topic prefix (one consumer group) sharing a QIKFLOW_HOME."""

    bootstrap: str
    prefix: str
    home: Path
    extra_agents: str = ""
    base_port: int = field(default_factory=free_port)
    workers: list[WorkerProcess] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "QIKFLOW_KAFKA_BOOTSTRAP": self.bootstrap,
            "QIKFLOW_TOPIC_PREFIX": self.prefix,
            "QIKFLOW_HOME": str(self.home),
            "QIKFLOW_STREAMS_WEB_PORT": str(self.base_port),
            "QIKFLOW_TOPIC_PARTITIONS": str(TEST_PARTITIONS),
            "QIKFLOW_STREAMS_COMMIT_INTERVAL_S": "0.5",
            "QIKFLOW_STREAMS_EXTRA_AGENTS": self.extra_agents,
            **self.extra_env,
        }

    def start(self, index: int = 0) -> WorkerProcess:
        """Start worker `index` and wait until Faust says it is ready."""
        log = self.home / f"worker-{index}.{uuid.uuid4().hex[:6]}.log"
        self.home.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "qikflow", "--log-level", "INFO", "worker",
                 "--index", str(index)],
                cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(index, process, log, self.base_port + index)
        self.workers.append(worker)
        deadline = time.monotonic() + READY_S
        while b"Worker ready" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {index} did not become ready:\n{tail}")
            time.sleep(0.3)
        return worker

    def stop_all(self) -> None:
        """Stop every worker, then delete every topic of this prefix (the broker is shared)."""
        for worker in self.workers:
            worker.stop()
        asyncio.run(delete_topics(self.bootstrap, self.prefix))


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete `<prefix>.*` and Faust's `<prefix>-streams-*` topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith((f"{prefix}.", f"{prefix}-"))]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def uncommitted(bootstrap: str, group: str, topic: str) -> int:
    """How many records of `topic` the consumer group `group` has not committed."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        behind = 0
        for tp, end in ends.items():
            behind += end - (await consumer.committed(tp) or 0)
        return behind
    finally:
        await consumer.stop()


def raw_record(body: bytes, receipt_id: str | None = None) -> RawRecord:
    return RawRecord(
        body=body,
        receipt_id=receipt_id or str(uuid.uuid4()),
        received_at_ms=int(time.time() * 1000),
        account="acme",
        content_type="application/json",
    )


async def send_raw(bootstrap: str, topic: str, bodies: Iterable[bytes]) -> list[RawRecord]:
    """Write each body to the raw topic as ingest does; returns the records sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent = []
    try:
        for body in bodies:
            record = raw_record(body)
            await producer.send(topic, body, headers=record.headers())
            sent.append(record)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def read(bootstrap: str, pattern: str, expected: int, timeout_s: float = 90.0
         ) -> list[ConsumerRecord]:
    return asyncio.run(
        consume(bootstrap, pattern=pattern, expected=expected, timeout_s=timeout_s, settle_s=2.0)
    )


def routed_ids(bootstrap: str, prefix: str, expected: int) -> Counter[str]:
    """How often each event id appears on the per-type topics of `prefix`."""
    records = read(bootstrap, EVENTS_PATTERN.format(prefix), expected, timeout_s=150)
    return Counter(event_id(r) for r in records)


def header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers:
        if key == name:
            return bytes(value).decode()
    return None


def event_id(record: ConsumerRecord) -> str:
    return header(record, names.EVENT_ID) or ""


def text_body(message_id: str, text: str, contact: str = CUSTOMER) -> bytes:
    return orjson.dumps({
        "event": "whatsapp:message:in",
        "payload": {
            "id": message_id, "name": "whatsapp",
            "contacts": [{"profile": {"name": "Asha Rao"}, "to": contact}],
            "message": {"id": message_id, "from": "918041234567", "type": "text",
                        "timestamp": "2026-11-20T09:15:02.412Z", "text": {"body": text}},
        },
    })


def status_body(message_id: str, state: str, contact: str = "+918080808080") -> bytes:
    return orjson.dumps({
        "event": "whatsapp:message:status",
        "payload": {
            "id": message_id, "name": "whatsapp",
            "contacts": [{"profile": {"name": ""}, "to": contact}],
            "message": {"type": "template", "status": state,
                        "sentAt": "2026-11-20T12:52:26.101Z",
                        "lastUpdatedAt": "2026-11-20T12:52:27.930Z"},
        },
    })


def traffic(count: int, tag: str, copies_every: int = 10) -> tuple[list[bytes], set[str]]:
    """`count` distinct events (texts and statuses), plus a resend of every `copies_every`th.

    Returns the bodies in send order and the event ids the per-type topics must hold.
    """
    bodies: list[bytes] = []
    expected: set[str] = set()
    for n in range(count):
        if n % 2:
            bodies.append(text_body(f"wamid.{tag}.{n}", f"order {n}?", f"+9198{n % 997:08d}"))
            expected.add(f"wamid.{tag}.{n}")
        else:
            bodies.append(status_body(f"{tag}.{n}", "delivered"))
            expected.add(f"{tag}.{n}:delivered")
        if n % copies_every == copies_every - 1:
            bodies.append(bodies[-5])  # Qikchat resent an earlier webhook
    return bodies, expected


def routed_total(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("qikflow_streams_routed_events_total"))
