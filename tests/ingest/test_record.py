"""Tests of ingest/record.py: receipt ids and the header round trip."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from ingest.record import (
    FIELD_CAPS_BYTES,
    RECEIPT_ID,
    RawRecord,
    cap,
    largest_headers,
    new_receipt_id,
)


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


def test_received_caps_each_header_and_keeps_the_body() -> None:
    body = b"\x00" * 100
    content_type = "application/json; x=" + "é" * 200_000
    record = RawRecord.received(
        body, source="qikchat", account="a" * 80, content_type=content_type,
        remote_addr="1" * 100,
    )
    assert record.body is body
    assert uuid.UUID(record.receipt_id).version == 7
    for name, value in record.headers():
        assert len(value) <= FIELD_CAPS_BYTES[name], name
    # Cut at a character boundary: still valid UTF-8, and a prefix of what was sent.
    assert len(record.content_type.encode()) in (255, 256)
    assert content_type.startswith(record.content_type)
    assert record.account == "a" * 64


def test_cap_keeps_short_values_and_cuts_between_characters() -> None:
    assert cap("text/plain", 256) == "text/plain"
    assert cap("ééé", 5) == "éé"
    assert cap("", 0) == ""


def test_largest_headers_bound_every_real_record() -> None:
    sizes = {name: len(value) for name, value in largest_headers()}
    assert sizes == FIELD_CAPS_BYTES
    assert set(sizes) == {name for name, _ in RawRecord(b"", "r", 1).headers()}
