"""Writing dead letters and raw records straight into a test prefix's topics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from ingest.record import RawRecord, new_receipt_id
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import ensure_topics, specs_for
from qikflow.operations.pipeline import Pipeline
from streams import headers as names

Headers = list[tuple[str, bytes]]


def pipeline(tmp_path: Path, database_url: str | None = None) -> Pipeline:
    """The test prefix's pipeline (QIKFLOW_TOPIC_PREFIX is set by the `topic_prefix` fixture)."""
    return Pipeline(KafkaSettings(), database_url, tmp_path / "lake", tmp_path / "spool")


def raw_record(body: bytes, *, account: str = "acme", at_ms: int | None = None) -> RawRecord:
    return RawRecord(body=body, receipt_id=new_receipt_id(),
                     received_at_ms=at_ms or time.time_ns() // 1_000_000, account=account,
                     content_type="application/json", remote_addr="127.0.0.1")


def letter_headers(record: RawRecord, *, reason: str, agent: str | None = None,
                   sink: str | None = None, source_topic: str = "t.raw") -> Headers:
    headers = [*record.headers(), (names.REASON, reason.encode()),
               (names.ERROR, b"ValueError: test")]
    if agent is not None:
        headers.append((names.FAILED_AGENT, agent.encode()))
    if sink is not None:
        headers.append((names.FAILED_SINK, sink.encode()))
    return [*headers, (names.SOURCE_TOPIC, source_topic.encode()),
            (names.SOURCE_PARTITION, b"0"), (names.SOURCE_OFFSET, b"7")]


async def create(kafka: KafkaSettings, *topics: str, configs: dict[str, str] | None = None
                 ) -> None:
    await ensure_topics(kafka, specs_for(kafka, list(topics), configs))


async def produce(kafka: KafkaSettings, topic: str,
                  records: Sequence[tuple[bytes | None, bytes, Headers]], *,
                  partition: int | None = None, timestamps_ms: Sequence[int] | None = None
                  ) -> None:
    """Send (key, value, headers) records and wait until all are acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=20,
                                max_batch_size=1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(
            topic, value, key=key, headers=headers, partition=partition,
            timestamp_ms=timestamps_ms[i] if timestamps_ms else None)
            for i, (key, value, headers) in enumerate(records)]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def read_all(kafka: KafkaSettings, topic: str) -> list[ConsumerRecord]:
    """Every record of `topic` now, in partition and offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(tps) if tps else {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord] = []
        left = [tp for tp in tps if ends[tp] > 0]
        while left:
            for batch in (await consumer.getmany(*left, timeout_ms=1000)).values():
                records += batch
            left = [tp for tp in left if await consumer.position(tp) < ends[tp]]
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def unique(text: str) -> str:
    return f"{text}-{uuid.uuid4().hex[:8]}"
