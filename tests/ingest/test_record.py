"""Tests of ingest/record.py: receipt ids and the header round trip."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from ingest.record import RECEIPT_ID, RawRecord, new_receipt_id


def test_receipt_ids_are_unique_time_ordered_uuid7() -> None:
    ids = [new_receipt_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(uuid.UUID(value).version == 7 for value in ids[:100])


def test_receipt_ids_unique_across_threads() -> None:
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: [new_receipt_id() for _ in range(5000)], range(4)))
    flat = [value for batch in batches for value in batch]
    assert len(set(flat)) == len(flat)


def test_headers_round_trip() -> None:
    record = RawRecord(
        body=b"\x00\xff{", receipt_id=new_receipt_id(), received_at_ms=1763630102412,
        source="qikchat", account="acme-in", content_type="application/json",
        remote_addr="10.1.2.3",
    )
    assert RawRecord.from_kafka(record.body, record.headers()) == record


def test_missing_headers_become_empty() -> None:
    record = RawRecord.from_kafka(None, [(RECEIPT_ID, b"r1")])
    assert record.body == b""
    assert record.receipt_id == "r1"
    assert record.received_at_ms == 0
    assert record.account == ""
