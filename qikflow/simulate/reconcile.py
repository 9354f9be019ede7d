"""`--verify`: check every stage of the pipeline against the simulator's ground truth.

    result = await reconcile(generator.truth, send_report, ReconcileOptions(kafka=...))
    print(result.table()); sys.exit(0 if result.ok else 1)

Stages: sent, acked (200), raw (byte-exact bodies in `<prefix>.raw`), routed (each event
id once, in its per-type topic), quarantined (malformed bodies in `<prefix>.unknown` or
`<prefix>.dlq`), opt-out, database, outbound state, lake. Each stage is polled until it
is complete or the deadline passes. A stage is skipped only when it is not configured,
and then its row says so.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from ingest.record import RECEIPT_ID
from qikflow.config import KafkaSettings
from qikflow.simulate._compare import (
    StageResult,
    compare_counts,
    compare_outbound,
    compare_placed,
    render_table,
)
from qikflow.simulate._readers import KafkaReader, header, read_database, read_lake
from qikflow.simulate.plan import GroundTruth, body_digest
from qikflow.simulate.sender import SendReport

__all__ = ["ReconcileOptions", "Reconciliation", "StageResult", "reconcile"]


@dataclass(frozen=True)
class ReconcileOptions:
    kafka: KafkaSettings
    database_url: str | None = None
    lake_dir: Path | None = None
    timeout_s: float = 120.0
    poll_interval_s: float = 1.0
    since_ms: int | None = None  # read topics from this time on; None: from the beginning
    # The streams are at-least-once: a worker that crashed re-routes what it had not yet
    # committed (same event_id). A run that crashed a worker on purpose reports those
    # copies without failing; every other run fails on a routed copy.
    routed_copies_allowed: bool = False


@dataclass(frozen=True)
class Reconciliation:
    rows: list[StageResult]

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def table(self) -> str:
        return render_table(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": [asdict(row) | {"ok": row.ok} for row in self.rows]}


class _Expected:
    """What must be found, from the bodies that got 200."""

    def __init__(self, truth: GroundTruth, acked: Collection[int] | None) -> None:
        self.raw = truth.raw_bodies(acked)
        self.quarantine = truth.quarantined_bodies(acked)
        self.events = {eid: event.type for eid, event in truth.events(acked).items()}
        self.optouts = dict.fromkeys(truth.optout_message_ids(acked), "contact.optout")
        self.inbound = sorted(truth.inbound_message_ids(acked))
        self.outbound = truth.outbound_states(acked)
        # Body digests read badly in a report: name the webhook that carried each.
        self.webhook_of = {r.digest.hex(): r.index for r in reversed(truth.records)}
        status_events = truth.status_events(acked)
        self.status_ids = sorted({mid for mid, _ in status_events})
        self.notices = sorted(truth.notice_ids(acked))
        self.database = dict.fromkeys(self.inbound, "inbound_messages") | {
            f"{mid}:{status}": "message_status_events" for mid, status in status_events
        } | dict.fromkeys(self.notices, "notices")


class _KafkaFindings:
    """What the topics hold, restricted to this run's bodies and ids."""

    def __init__(self, prefix: str, expected: _Expected, copies_allowed: bool = False) -> None:
        self.prefix = prefix
        self.expected = expected
        self.copies_allowed = copies_allowed
        self.raw: Counter[bytes] = Counter()
        self.receipts: dict[str, bytes] = {}
        self.events: dict[str, list[str]] = {}
        self.quarantine: dict[bytes, list[str]] = {}
        self.optouts: dict[str, list[str]] = {}
        self.unreadable = 0
        self._unmatched: list[tuple[str, ConsumerRecord]] = []

    def add(self, records: list[ConsumerRecord]) -> None:
        by_topic: dict[str, list[ConsumerRecord]] = {}
        for record in records:
            by_topic.setdefault(record.topic[len(self.prefix) + 1:], []).append(record)
        for record in by_topic.pop("raw", []):
            digest = body_digest(record.value or b"")
            if digest in self.expected.raw:
                self.raw[digest] += 1
                receipt = header(record, RECEIPT_ID)
                if receipt:
                    self.receipts[receipt] = digest
        quarantined = [(name, r) for name in ("unknown", "dlq") for r in by_topic.pop(name, [])]
        self._unmatched = [item for item in self._unmatched + quarantined
                           if not self._match_quarantined(*item)]
        for record in by_topic.pop("contact.optout", []):
            message_id = self._field(record, "message_id")
            if message_id in self.expected.optouts:
                self.optouts.setdefault(message_id, []).append("contact.optout")
        for event_type, type_records in by_topic.items():
            for record in type_records:
                event_id = self._field(record, "event_id")
                if event_id in self.expected.events:
                    self.events.setdefault(event_id, []).append(event_type)

    def _match_quarantined(self, outcome: str, record: ConsumerRecord) -> bool:
        # The streams may forward the body as is or wrap it; the ingest receipt id header
        # travels with it either way.
        digest = body_digest(record.value or b"")
        if digest not in self.expected.quarantine:
            receipt = header(record, RECEIPT_ID)
            if receipt is None or receipt not in self.receipts:
                return False
            digest = self.receipts[receipt]
        if digest in self.expected.quarantine:
            self.quarantine.setdefault(digest, []).append(outcome)
        return True

    def _field(self, record: ConsumerRecord, name: str) -> str:
        try:
            value = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            self.unreadable += 1
            return ""
        found = value.get(name) if isinstance(value, dict) else None
        return found if isinstance(found, str) else ""

    def rows(self) -> list[StageResult]:
        expected = self.expected
        unreadable = f"{self.unreadable} record(s) not JSON" if self.unreadable else ""
        raw = compare_counts("raw", expected.raw, self.raw, duplicates_fail=False)
        quarantined = compare_placed("quarantined", expected.quarantine, self.quarantine,
                                     duplicates_fail=False)
        return [
            self._name_webhooks(raw),
            compare_placed("routed", expected.events, self.events, note=unreadable,
                           duplicates_fail=not self.copies_allowed),
            self._name_webhooks(quarantined),
            # The opt-out agent reads the routed topics at least once too: after a worker
            # crash it may emit a copy (same event_id), which the sinks' upserts absorb.
            compare_placed("opt-out", expected.optouts, self.optouts,
                           duplicates_fail=not self.copies_allowed),
        ]

    def _name_webhooks(self, row: StageResult) -> StageResult:
        def name(example: str) -> str:
            digest, _, rest = example.partition(" ")
            index = self.expected.webhook_of.get(digest)
            return f"webhook #{index}{' ' + rest if rest else ''}" if index is not None else example

        return replace(row, examples=tuple(name(example) for example in row.examples))


def _send_rows(truth: GroundTruth, report: SendReport | None) -> list[StageResult]:
    if report is None:
        why = "no send report; every planned body is expected"
        return [StageResult.not_checked("sent", why), StageResult.not_checked("acked (200)", why)]
    codes = ", ".join(f"{code or 'no answer'}: {n}"
                      for code, n in sorted(report.status_counts().items()) if code != 200)
    sent = len(report.results)
    return [
        StageResult("sent", len(truth), sent, missing=len(truth) - sent),
        StageResult("acked (200)", sent, report.ok, missing=sent - report.ok, note=codes),
    ]


async def _until_ok(check: Callable[[], Awaitable[list[StageResult]]], deadline: float,
                    interval_s: float) -> list[StageResult]:
    while True:
        rows = await check()
        if all(row.ok for row in rows) or time.monotonic() >= deadline:
            return rows
        await asyncio.sleep(interval_s)


async def reconcile(
    truth: GroundTruth, report: SendReport | None, options: ReconcileOptions
) -> Reconciliation:
    """Poll every configured stage until it holds what ground truth says, or time runs out."""
    expected = _Expected(truth, report.acked() if report is not None else None)
    deadline = time.monotonic() + options.timeout_s
    prefix = options.kafka.topic_prefix
    # Every per-type topic but `message.state` (states, not events), and the notice topics.
    pattern = (rf"{re.escape(prefix)}\.(raw|unknown|dlq|contact\.optout|"
               rf"message\.(?!state$)[a-z0-9_]+|status\.[a-z0-9_]+|template\.status|"
               rf"account\.update|contact\.preferences|provider\.error|call\.[a-z]+)")
    findings = _KafkaFindings(prefix, expected, options.routed_copies_allowed)

    async with KafkaReader(options.kafka, pattern, options.since_ms) as reader:
        async def check_kafka() -> list[StageResult]:
            findings.add(await reader.poll(deadline))
            return findings.rows()

        await _until_ok(check_kafka, deadline, options.poll_interval_s)

        async def check_database() -> list[StageResult]:
            return await _database_rows(options.database_url, expected)

        database = await _until_ok(check_database, deadline, options.poll_interval_s)

        async def check_lake() -> list[StageResult]:
            return [await _lake_row(options.lake_dir, expected)]

        lake = await _until_ok(check_lake, deadline, options.poll_interval_s)
        # One last read, so copies that arrived after the stage first looked whole count.
        findings.add(await reader.poll(time.monotonic() + 10.0))
    return Reconciliation([*_send_rows(truth, report), *findings.rows(), *database, *lake])


async def _database_rows(url: str | None, expected: _Expected) -> list[StageResult]:
    if not url:
        why = "no --database-url / QIKFLOW_DATABASE_URL"
        return [StageResult.not_checked("database", why),
                StageResult.not_checked("outbound state", why)]
    rows = await read_database(url, expected.inbound, sorted(expected.outbound),
                               expected.status_ids, expected.notices)
    found: dict[str, list[str]] = {
        mid: ["inbound_messages"] * count for mid, count in rows.inbound.items()}
    for (mid, status), count in rows.status_events.items():
        found[f"{mid}:{status}"] = ["message_status_events"] * count
    for event_id, count in rows.notices.items():
        found[event_id] = ["notices"] * count
    note = "; ".join(rows.problems)
    return [compare_placed("database", expected.database, found, note=note),
            compare_outbound(expected.outbound, rows.outbound)]


async def _lake_row(lake_dir: Path | None, expected: _Expected) -> StageResult:
    if lake_dir is None:
        return StageResult.not_checked("lake", "no --lake-dir / QIKFLOW_LAKE_DIR")
    found, note = await read_lake(lake_dir, sorted(expected.events))
    return compare_placed("lake", expected.events, found, duplicates_fail=False, note=note)
