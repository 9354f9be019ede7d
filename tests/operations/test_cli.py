"""`qikflow trace`, `qikflow redrive`, `qikflow replay` as an operator types them: output,
exit statuses, progress, the audit trail, and bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from qikflow.cli import main
from qikflow.config import KafkaSettings
from qikflow.topics import Topics
from sinks._topics import input_topics
from sinks.base import SinkRecord
from sinks.postgres import PostgresSink
from streams.notices import NoticeEvent
from streams.parsers import Parsed, parse_raw
from tests._ports import free_port
from tests.operations._letters import create, produce, raw_record, read_all


def _entries(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("QIKFLOW_CONSOLE_AUDIT_FILE", str(path))
    monkeypatch.setenv("QIKFLOW_SPOOL_DIR", str(tmp_path / "spool"))
    return path


def test_redrive_dry_run_then_for_real_with_progress_and_audit(
        topic_prefix: str, audit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    records = [raw_record(b'{"event": "x"}') for _ in range(3)]
    asyncio.run(create(kafka, topics.raw, topics.unknown))
    asyncio.run(produce(kafka, topics.unknown, [(None, r.body, r.headers()) for r in records]))

    assert main(["redrive", "--from", "unknown", "--since", "1h", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "3 matched, would send 3" in out and f"3 to {topics.raw}" in out
    assert "re-drive: read 3/3 dead letters" in err
    assert _entries(audit) == [] and asyncio.run(read_all(kafka, topics.raw)) == []

    assert main(["redrive", "--from", "unknown", "--type", "x"]) == 0
    assert "3 matched, sent 3" in capsys.readouterr().out
    assert len(asyncio.run(read_all(kafka, topics.raw))) == 3
    (entry,) = _entries(audit)
    assert entry["action"] == "redrive" and entry["who"].endswith("@cli")
    assert (entry["source"], entry["sent"], entry["filter"]) == (
        "unknown", 3, {"reason": "", "type": "x", "account": "", "since": "", "until": ""})


@pytest.mark.parametrize(("argv", "says"), [
    (["redrive", "--from", "dlq", "--since", "last tuesday"], "is not a time"),
    (["redrive", "--from", "dlq", "--since", "1h", "--until", "2h"], "is after until"),
    (["replay", "sink", "postgres", "--since", "soon"], "is not a time"),
    (["trace", "0190f5e2-8c4b-4d3e-9a1b-2c3d4e5f6a7b"], "not a qikflow receipt id"),
])
def test_bad_input_exits_2_and_says_why(argv: list[str], says: str, audit: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert says in capsys.readouterr().err
    assert _entries(audit) == []


def test_kafka_away_exits_1_and_keeps_everything(monkeypatch: pytest.MonkeyPatch, audit: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QIKFLOW_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    assert main(["redrive", "--from", "dlq"]) == 1
    assert "nothing was re-driven from dlq" in capsys.readouterr().err
    assert main(["replay", "sink", "lake", "--since", "1h"]) == 1
    assert "was not moved" in capsys.readouterr().err
    assert _entries(audit) == []


def test_trace_prints_the_raw_record_and_exits_1_when_nothing_is_found(
        topic_prefix: str, audit: Path, database_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    asyncio.run(create(kafka, topics.raw, topics.unknown, topics.dlq, topics.sink_dlq))
    record = raw_record(b'{"event": "whatsapp:template:status", "payload": {}}')
    asyncio.run(produce(kafka, topics.raw, [(None, record.body, record.headers())],
                        partition=1))
    assert main(["trace", record.receipt_id]) == 0
    out = capsys.readouterr().out
    assert f"raw record: {topics.raw}[1]@0" in out and '"event": "whatsapp:template:status"' in out
    assert f"today's parser sends it to {topics.unknown}" in out
    missing = raw_record(b"{}").receipt_id
    assert main(["trace", missing]) == 1
    assert f"no raw record: read 1 records of {topics.raw}" in capsys.readouterr().out


def test_trace_follows_a_notice_to_its_topic_and_its_rows(
        topic_prefix: str, audit: Path, database_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    asyncio.run(create(kafka, topics.raw, topics.unknown, topics.dlq, topics.sink_dlq,
                       topics.event("template.status")))
    body = orjson.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "102290129340398", "time": 1763643600, "changes": [
            {"field": "message_template_status_update", "value": {
                "event": "PAUSED", "message_template_id": 42,
                "message_template_name": "order_shipped",
                "message_template_language": "en_US"}}]}]})
    record = raw_record(body)
    outcome = parse_raw(record)
    assert isinstance(outcome, Parsed)
    (notice,) = outcome.notices
    asyncio.run(produce(kafka, topics.raw, [(None, record.body, record.headers())]))
    asyncio.run(_store(database_url, notice))
    assert main(["trace", record.receipt_id]) == 0
    out = capsys.readouterr().out
    assert "today's parser makes 1 event of it" in out
    assert f"event {notice.event_id} (template.status)\n" in out
    assert f"not found in {topics.event('template.status')}" in out
    assert "PostgreSQL notices: event_id=" in out
    assert "PostgreSQL template_events: event_id=" in out and "event=PAUSED" in out


async def _store(database_url: str, notice: NoticeEvent) -> None:
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        await sink.write([SinkRecord("t", 0, 0, notice)])
    finally:
        await sink.close()


def test_replay_dry_run_and_the_audit_of_a_real_one(topic_prefix: str, audit: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    kafka = KafkaSettings()
    asyncio.run(create(kafka, *input_topics(kafka)))
    assert main(["replay", "sink", "postgres", "--since", "2h", "--dry-run"]) == 0
    assert "would move group" in capsys.readouterr().out and _entries(audit) == []
    assert main(["replay", "sink", "lake", "--since", "2h"]) == 0
    assert "0 records to read again" in capsys.readouterr().out
    (entry,) = _entries(audit)
    assert (entry["action"], entry["sink"], entry["records"]) == ("replay", "lake", 0)
