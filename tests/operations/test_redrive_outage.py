"""A re-drive while Kafka goes away, on a broker of its own: the run stops, says how many
it sent, and every body is either in `<prefix>.raw` or still in the quarantine."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.quarantine import Quarantine
from ingest.record import RECEIPT_ID
from ingest.spool_file import encode_meta
from qikflow.config import KafkaSettings
from qikflow.console.settings import ConsoleSettings
from qikflow.local.kafka import LocalKafka
from qikflow.operations.dead_letters import DeadLetterFilter
from qikflow.operations.pipeline import Pipeline
from qikflow.operations.redrive import BATCH, redrive
from qikflow.topics import Topics
from tests._ports import broker_port
from tests.operations._letters import create, raw_record, read_all

BODIES = 3 * BATCH


@pytest.fixture
def broker() -> Iterator[LocalKafka]:
    # A name of its own: two runs at once must not share a data folder.
    own = LocalKafka(home=Path(".qikflow"), name=f"redrive-{uuid.uuid4().hex[:8]}",
                     port=broker_port())
    own.start()
    try:
        yield own
    finally:
        own.stop()
        own.wipe()


async def test_kafka_stopping_mid_run_moves_each_body_once_or_not_at_all(
        broker: LocalKafka, tmp_path: Path) -> None:
    kafka = KafkaSettings(bootstrap=broker.bootstrap, topic_prefix="outage",
                          topic_partitions=3)
    raw = Topics.from_settings(kafka).raw
    await create(kafka, raw)
    quarantine = Quarantine.open(tmp_path / "spool")
    receipts = set()
    for n in range(BODIES):
        record = raw_record(b'{"n": %d}' % n)
        quarantine.put(record.receipt_id, encode_meta(record), record.body, "RecordTooLarge")
        receipts.add(record.receipt_id)
    pipeline = Pipeline(kafka, None, tmp_path / "lake", tmp_path / "spool")

    def stop_after_the_first_batch(scanned: int, total: int, sent: int) -> None:
        if sent >= BATCH and broker.pid() is not None:
            broker.stop()

    summary = await redrive(pipeline, "quarantine", DeadLetterFilter(),
                            window_s=ConsoleSettings().search_window_s,
                            progress=stop_after_the_first_batch)
    assert summary.sent == BATCH and not summary.complete
    assert summary.error is not None
    assert f"Kafka at {broker.bootstrap} failed" in summary.error
    assert f"the {BATCH} records counted as sent are in their destination, every other " \
        "letter is still where it was" in summary.error

    await asyncio.to_thread(broker.start)
    moved = {dict(r.headers)[RECEIPT_ID].decode() for r in await read_all(kafka, raw)}
    kept = {entry.receipt_id for entry in quarantine.entries()}
    assert len(moved) == summary.sent and not moved & kept and moved | kept == receipts
