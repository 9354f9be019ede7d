"""The reconciler against a real broker and PostgreSQL, fed as ingest, streams and sinks would."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import duckdb
from aiokafka import AIOKafkaProducer

from ingest.record import RawRecord, new_receipt_id
from qikflow.config import KafkaSettings
from qikflow.simulate.generator import TrafficMix, generate
from qikflow.simulate.plan import GroundTruth, PlannedWebhook
from qikflow.simulate.reconcile import ReconcileOptions, Reconciliation, reconcile
from qikflow.simulate.sender import SendReport, SendResult
from sinks.base import SinkRecord
from sinks.postgres import PostgresSink
from streams.agents.optout import preference_optout
from streams.events import Event, OptOutEvent, TextContent
from streams.notices import NoticeEvent
from streams.parsers import Parsed, Unrecognised, parse_raw
from streams.stop_phrases import detect_optout

REFUSED = {3, 40}  # webhooks that got 503: nothing of theirs is expected downstream
# Small, but with enough resends and malformed bodies to exercise every row.
MIX = TrafficMix(malformed_share=0.03, duplicate_share=0.03)


def _plan() -> tuple[list[PlannedWebhook], GroundTruth]:
    return generate(seed=21, rate_per_s=60, duration_s=4, mix=MIX)


@dataclass
class Faults:
    """What the pipeline under test loses or doubles."""

    drop_raw: set[int] = field(default_factory=set)  # webhook indexes
    drop_events: set[str] = field(default_factory=set)  # event ids, from topics, lake, db
    double_events: set[str] = field(default_factory=set)
    misroute: set[str] = field(default_factory=set)  # sent to status.unknown instead
    wrong_failed_flag: set[str] = field(default_factory=set)  # outbound message ids


def _report(webhooks: list[PlannedWebhook]) -> SendReport:
    results = [SendResult(w.index, 503 if w.index in REFUSED else 200, 0.001, w.send_at_s,
                          0.0, w.index, None) for w in webhooks]
    return SendReport(results, 1.0, ok=len(webhooks) - len(REFUSED))


async def _run_pipeline(webhooks: list[PlannedWebhook], bootstrap: str, prefix: str,
                        lake: Path, database_url: str, faults: Faults) -> None:
    events: dict[str, Event | NoticeEvent] = {}
    optouts: dict[str, OptOutEvent] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for webhook in webhooks:
            if webhook.index in REFUSED:
                continue
            record = RawRecord(webhook.body, new_receipt_id(), time.time_ns() // 1_000_000,
                               account=webhook.account or "")
            if webhook.index not in faults.drop_raw:
                await producer.send(f"{prefix}.raw", record.body, headers=record.headers())
            outcome = parse_raw(record)
            if not isinstance(outcome, Parsed):
                topic = "unknown" if isinstance(outcome, Unrecognised) else "dlq"
                await producer.send(f"{prefix}.{topic}", record.body, headers=record.headers())
                continue
            for notice in outcome.notices:
                events.setdefault(notice.event_id, notice)  # the streams' dedup
                optout = preference_optout(notice)
                if optout is not None:
                    optouts.setdefault(optout.message_id, optout)
            for event in outcome.events:
                events.setdefault(event.event_id, event)  # the streams' dedup
                if isinstance(event.content, TextContent):
                    matched = detect_optout(event.content.body)
                    if matched and event.message_id not in optouts:
                        optouts[event.message_id] = OptOutEvent(
                            event_id=f"optout:{event.message_id}",
                            contact_number=event.contact_number,
                            contact_name=event.contact_name, account=event.account,
                            message_id=event.message_id, text=event.content.body,
                            matched=matched, occurred_at=event.occurred_at,
                            received_at=event.received_at, receipt_ids=event.receipt_ids)
        kept = [e for eid, e in events.items() if eid not in faults.drop_events]
        for item in kept:
            copies = 2 if item.event_id in faults.double_events else 1
            event_type = "status.unknown" if item.event_id in faults.misroute else item.type
            for _ in range(copies):
                await producer.send(f"{prefix}.{event_type}", item.to_json(), key=item.key)
        for optout in optouts.values():
            await producer.send(f"{prefix}.contact.optout", optout.to_json(), key=optout.key)
        await producer.flush()
    finally:
        await producer.stop()
    _write_lake(lake, kept)
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        stored: list[Event | OptOutEvent | NoticeEvent] = [*kept, *optouts.values()]
        await sink.write([SinkRecord("t", 0, n, event) for n, event in enumerate(stored)])
    finally:
        await sink.close()
    if faults.wrong_failed_flag:
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(
                "UPDATE outbound_messages SET failed = NOT failed WHERE message_id = ANY($1)",
                sorted(faults.wrong_failed_flag))
        finally:
            await connection.close()


def _write_lake(lake: Path, events: list[Event | NoticeEvent]) -> None:
    with duckdb.connect() as connection:
        connection.execute("CREATE TABLE e (event_id VARCHAR, type VARCHAR, message_id VARCHAR,"
                           " date VARCHAR)")
        connection.executemany("INSERT INTO e VALUES (?, ?, ?, ?)", [
            (e.event_id, e.type, getattr(e, "message_id", None),
             e.received_at.date().isoformat())
            for e in events])
        connection.execute(f"COPY e TO '{lake}' (FORMAT parquet, PARTITION_BY (type, date))")


async def _reconcile(webhooks: list[PlannedWebhook], truth: GroundTruth, lake: Path,
                     database_url: str, timeout_s: float) -> Reconciliation:
    options = ReconcileOptions(kafka=KafkaSettings(), database_url=database_url, lake_dir=lake,
                               timeout_s=timeout_s, poll_interval_s=0.5)
    return await reconcile(truth, _report(webhooks), options)


def _rows(result: Reconciliation) -> dict[str, tuple[int | None, ...]]:
    return {row.stage: (row.expected, row.found, row.missing, row.duplicated, row.mismatched)
            for row in result.rows}


async def test_a_complete_pipeline_reconciles(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, tmp_path: Path
) -> None:
    webhooks, truth = _plan()
    await _run_pipeline(webhooks, kafka_bootstrap, topic_prefix, tmp_path, database_url,
                        Faults())
    result = await _reconcile(webhooks, truth, tmp_path, database_url, timeout_s=60)

    # Only the refused webhooks fail the run: a 503 is a notification Qikchat may drop.
    assert [row.stage for row in result.rows if not row.ok] == ["acked (200)"], result.table()
    rows = _rows(result)
    acked = set(range(len(webhooks))) - REFUSED
    assert rows["sent"] == (240, 240, 0, 0, 0)
    assert rows["acked (200)"] == (240, 238, 2, 0, 0)
    assert rows["raw"][:3] == (238, 238, 0)
    assert rows["routed"] == (len(truth.events(acked)),) * 2 + (0, 0, 0)
    assert rows["quarantined"][0] == len(truth.quarantined_bodies(acked)) > 0
    assert rows["quarantined"][1:3] == (rows["quarantined"][0], 0)
    assert rows["opt-out"][1] == len(truth.optout_message_ids(acked))
    assert rows["database"][2:] == (0, 0, 0)
    assert rows["outbound state"] == (len(truth.outbound_states(acked)),) * 2 + (0, 0, 0)
    assert rows["lake"] == rows["routed"]


async def test_losses_duplicates_and_wrong_states_are_reported(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, tmp_path: Path
) -> None:
    webhooks, truth = _plan()
    statuses = [w for w in webhooks if w.kind == "status" and w.index not in REFUSED]
    messages = [w for w in webhooks if w.kind == "message" and w.index not in REFUSED]
    lost, doubled, misrouted = (statuses[0].expected.events[0].event_id,
                                messages[0].expected.events[0].event_id,
                                messages[1].expected.events[0].event_id)
    lost_message = statuses[0].expected.events[0].message_id
    wrong = next(e.message_id for w in statuses for e in w.expected.events
                 if e.message_id != lost_message)
    faults = Faults(drop_raw={messages[2].index}, drop_events={lost}, double_events={doubled},
                    misroute={misrouted}, wrong_failed_flag={wrong})
    await _run_pipeline(webhooks, kafka_bootstrap, topic_prefix, tmp_path, database_url, faults)
    result = await _reconcile(webhooks, truth, tmp_path, database_url, timeout_s=3)

    assert not result.ok
    rows = _rows(result)
    assert rows["raw"][2] == 1
    assert rows["routed"][2:] == (1, 1, 1)
    assert rows["database"][2] == 1  # the lost status event
    assert rows["outbound state"][4] == 1
    assert rows["lake"][2] == 1
    table = result.table()
    assert lost in table and "FAIL" in table
    assert f"raw: e.g. webhook #{messages[2].index}" in table
