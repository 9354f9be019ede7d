"""Re-drive on the real broker: where each kind of dead letter goes back to, with which
headers; dry runs; repeated re-drives; the quarantine; Kafka refusing or away."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from ingest.quarantine import Quarantine
from ingest.record import RECEIPT_ID, RECEIVED_AT_MS
from ingest.spool_file import encode_meta
from qikflow.config import KafkaSettings
from qikflow.console.settings import ConsoleSettings
from qikflow.operations.dead_letters import DeadLetterFilter
from qikflow.operations.errors import KafkaUnavailableError
from qikflow.operations.pipeline import Pipeline
from qikflow.operations.records import INGEST_HEADERS, REDRIVEN_AT_MS, REDRIVEN_FROM
from qikflow.operations.redrive import SKIP_COPY, SKIP_NO_RAW, redrive
from qikflow.topics import Topics
from streams import headers as names
from tests._ports import free_port
from tests.operations._letters import (
    create,
    letter_headers,
    pipeline,
    produce,
    raw_record,
    read_all,
)

WINDOW_S = ConsoleSettings().search_window_s
ALL = DeadLetterFilter()


def _names(headers: list[tuple[str, bytes]]) -> list[str]:
    return [name for name, _ in headers]


async def test_unknown_bodies_go_back_to_raw_with_their_receipt_headers(
        topic_prefix: str, tmp_path: Path) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    await create(kafka, topics.raw, topics.unknown)
    record = raw_record(b'{"event": "whatsapp:message:edited", "payload": {}}')
    headers = [*record.headers(), (names.REASON, b"qikchat: unknown event")]
    await produce(kafka, topics.unknown, [(None, record.body, headers)], partition=0)

    dry = await redrive(pipeline(tmp_path), "unknown", ALL, dry_run=True, window_s=WINDOW_S)
    assert (dry.matched, dry.sent, dict(dry.destinations)) == (1, 1, {topics.raw: 1})
    assert await read_all(kafka, topics.raw) == []

    before_ms = time.time_ns() // 1_000_000
    summary = await redrive(pipeline(tmp_path), "unknown", ALL, window_s=WINDOW_S)
    assert summary.complete and summary.sent == 1
    (sent,) = await read_all(kafka, topics.raw)
    assert sent.value == record.body and sent.key is None
    got = dict(sent.headers)
    assert {name: got[name] for name in INGEST_HEADERS} == dict(record.headers())
    assert names.REASON not in got
    assert got[REDRIVEN_FROM] == f"{topics.unknown}[0]@0".encode()
    assert int(got[REDRIVEN_AT_MS]) >= before_ms


async def test_a_redriven_copy_is_skipped_while_its_original_is_still_there(
        topic_prefix: str, tmp_path: Path) -> None:
    """Re-driving `unknown` twice while the parser still does not know the body: the copy
    the first re-drive produced stands beside the original; the second re-drive sends the
    original once, not both (so repeated re-drives do not multiply)."""
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    await create(kafka, topics.raw, topics.unknown)
    record = raw_record(b'{"event": "whatsapp:message:edited"}')
    reason = (names.REASON, b"unknown event")
    await produce(kafka, topics.unknown, [(None, record.body, [*record.headers(), reason])],
                  partition=1)
    copy = [*record.headers(), (REDRIVEN_AT_MS, b"1"),
            (REDRIVEN_FROM, f"{topics.unknown}[1]@0".encode()), reason]
    await produce(kafka, topics.unknown, [(None, record.body, copy)], partition=1)
    summary = await redrive(pipeline(tmp_path), "unknown", ALL, window_s=WINDOW_S)
    assert (summary.matched, summary.sent, dict(summary.skipped)) == (2, 1, {SKIP_COPY: 1})
    (sent,) = await read_all(kafka, topics.raw)
    assert dict(sent.headers)[REDRIVEN_FROM] == f"{topics.unknown}[1]@0".encode()


async def test_a_dedup_dead_letter_sends_its_raw_record_again(topic_prefix: str,
                                                              tmp_path: Path) -> None:
    """Dedup dead-letters the event (JSON); the raw record it came from, found by receipt
    id in `<prefix>.raw`, is what goes back, so the router parses it again."""
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    await create(kafka, topics.raw, topics.dlq)
    webhook = raw_record(b'{"event": "whatsapp:message:in", "payload": {"id": "wamid.A"}}')
    lost = raw_record(b"{}")  # its raw record is not in the topic (retention)
    await produce(kafka, topics.raw, [(None, webhook.body, webhook.headers())])
    event_headers = [(names.EVENT_ID, b"wamid.A"), (names.EVENT_TYPE, b"message.text")]
    letters = [
        (b"+91", b'{"event_id": "wamid.A"}', [*letter_headers(
            webhook, reason="undeliverable", agent="dedup"), *event_headers]),
        (b"+92", b'{"event_id": "wamid.B"}', letter_headers(lost, reason="undeliverable",
                                                            agent="dedup")),
    ]
    await produce(kafka, topics.dlq, letters)
    summary = await redrive(pipeline(tmp_path), "dlq", ALL, window_s=WINDOW_S)
    assert (summary.sent, dict(summary.skipped)) == (1, {SKIP_NO_RAW: 1})
    raw = await read_all(kafka, topics.raw)
    assert [r.value for r in raw] == [webhook.body, webhook.body]
    # The copy may land in any partition, before or after the original in read order.
    (again,) = [r for r in raw if REDRIVEN_FROM in dict(r.headers)]
    assert dict(again.headers)[RECEIPT_ID] == webhook.receipt_id.encode()
    assert set(_names(again.headers)) == INGEST_HEADERS | {REDRIVEN_AT_MS, REDRIVEN_FROM}


async def test_letters_of_stages_after_dedup_go_back_to_their_topic(topic_prefix: str,
                                                                    tmp_path: Path) -> None:
    """A sink's or an agent's dead letter was delivered already (dedup would drop it from
    raw): it goes back to the per-type topic it was read from, key and event unchanged."""
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    text = topics.event("message.text")
    await create(kafka, topics.raw, text, topics.dlq, topics.sink_dlq)
    record = raw_record(b"{}")
    event = orjson.dumps({"event_id": "wamid.S", "type": "message.text"})
    own = [*record.headers(), (names.EVENT_ID, b"wamid.S"), (names.EVENT_TYPE, b"message.text")]
    await produce(kafka, topics.sink_dlq, [(b"+919876543210", event, [
        *own, *letter_headers(record, reason="write", sink="postgres", source_topic=text)[6:]])])
    await produce(kafka, topics.dlq, [(b"+919876543210", event, [
        *own, *letter_headers(record, reason="failed", agent="optout", source_topic=text)[6:]])])
    for source in ("sink.dlq", "dlq"):
        summary = await redrive(pipeline(tmp_path), source, DeadLetterFilter(type="message.*"),
                                window_s=WINDOW_S)
        assert dict(summary.destinations) == {text: 1}
    back = await read_all(kafka, text)
    assert [(r.key, r.value) for r in back] == [(b"+919876543210", event)] * 2
    for sent in back:
        assert set(_names(sent.headers)) == set(_names(own)) | {REDRIVEN_AT_MS, REDRIVEN_FROM}
    assert await read_all(kafka, topics.raw) == []


def _quarantine(tmp_path: Path, bodies: list[bytes]) -> tuple[Quarantine, list[str]]:
    quarantine = Quarantine.open(tmp_path / "spool")
    receipts = []
    for body in bodies:
        record = raw_record(body)
        quarantine.put(record.receipt_id, encode_meta(record), body, "MessageSizeTooLargeError")
        receipts.append(record.receipt_id)
    return quarantine, receipts


async def test_the_quarantine_gives_up_only_what_kafka_took(topic_prefix: str,
                                                            tmp_path: Path) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    await create(kafka, topics.raw, configs={"max.message.bytes": "2048"})
    quarantine, receipts = _quarantine(tmp_path, [b'{"small": 1}', b"x" * 10_000, b"{}"])
    summary = await redrive(pipeline(tmp_path), "quarantine",
                            DeadLetterFilter(reason="toolarge"), window_s=WINDOW_S)
    assert (summary.matched, summary.sent) == (3, 2)
    assert not summary.complete and summary.error is None
    assert len(summary.refused) == 1 and receipts[1] in summary.refused[0]
    assert [entry.receipt_id for entry in quarantine.entries()] == [receipts[1]]
    raw = await read_all(kafka, topics.raw)
    assert sorted(r.value for r in raw) == sorted([b"{}", b'{"small": 1}'])
    sent = dict(raw[0].headers)
    assert sent[REDRIVEN_FROM].startswith(b"quarantine:") and RECEIVED_AT_MS in sent


async def test_kafka_away_moves_nothing_and_says_so(tmp_path: Path) -> None:
    _, receipts = _quarantine(tmp_path, [b"{}", b"[]"])
    away = Pipeline(KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"), None,
                    tmp_path / "lake", tmp_path / "spool")
    with pytest.raises(KafkaUnavailableError, match="nothing was re-driven from quarantine; "
                                                    "every letter is where it was"):
        await redrive(away, "quarantine", ALL, window_s=WINDOW_S)
    assert [e.receipt_id for e in Quarantine.open(tmp_path / "spool").entries()] == receipts


async def test_picked_letters_only(topic_prefix: str, tmp_path: Path) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    await create(kafka, topics.raw, topics.unknown)
    records = [raw_record(b'{"n": %d}' % i) for i in range(4)]
    await produce(kafka, topics.unknown, [(None, r.body, r.headers()) for r in records],
                  partition=2)
    summary = await redrive(pipeline(tmp_path), "unknown", ALL,
                            refs=["unknown:2:3", "unknown:2:1"], window_s=WINDOW_S)
    assert (summary.matched, summary.sent) == (2, 2)
    assert sorted(r.value for r in await read_all(kafka, topics.raw)) == [b'{"n": 1}',
                                                                          b'{"n": 3}']
