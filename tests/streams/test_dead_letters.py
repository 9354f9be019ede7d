"""Dead letters (`streams/dead_letters.py`): the record whole when it fits the dead-letter
topic, else a bounded preview that still says what, where and why."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.record import FIELD_CAPS_BYTES, RECEIPT_ID
from streams import headers as names
from streams.budget import WorkerBudget
from streams.dead_letters import (
    HEADER_PREVIEW_BYTES,
    KEY_PREVIEW_BYTES,
    PREVIEW_BYTES,
    dead_letter,
    largest_preview_bytes,
)
from streams.headers import header
from streams.settings import StreamsSettings

BUDGET = WorkerBudget.from_settings(StreamsSettings())
RECEIPT = b"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


@dataclass(frozen=True)
class Source:
    topic: str = "acme.raw"
    partition: int = 4
    offset: int = 325


def test_a_record_within_the_budget_is_dead_lettered_whole() -> None:
    body = b"\x00not json" * 100_000
    letter = dead_letter(None, body, [(RECEIPT_ID, RECEIPT)], Source(), reason="undecodable",
                         error="not JSON", agent="router", limit_bytes=BUDGET.dead_letter_bytes)
    assert letter.value == body
    assert not letter.truncated
    assert header(letter.headers, RECEIPT_ID) == RECEIPT.decode()
    assert header(letter.headers, names.REASON) == "undecodable"


def test_the_largest_raw_record_with_the_longest_headers_fits_the_budget_whole() -> None:
    ingest = [(name, b"h" * size) for name, size in FIELD_CAPS_BYTES.items()]
    source = Source(topic="t" * 249, partition=2**31 - 1, offset=2**63 - 1)
    letter = dead_letter(b"", bytes(BUDGET.max_body_bytes), ingest, source, reason="r" * 100,
                         error="e" * 10_000, agent="a" * 300, limit_bytes=BUDGET.dead_letter_bytes)
    assert not letter.truncated
    assert letter.size <= BUDGET.raw.dead_letter_bytes <= BUDGET.dead_letter_bytes


def test_a_record_beyond_the_limit_becomes_a_bounded_preview_with_its_coordinates() -> None:
    value = b"v" * 3_000_000
    own = [(RECEIPT_ID, RECEIPT), ("big", b"b" * 500_000), *[(f"h{n}", b"x") for n in range(99)]]
    letter = dead_letter(b"k" * 5000, value, own, Source(), reason="too-large",
                         error="event is 3000000 bytes", agent="router",
                         limit_bytes=BUDGET.dead_letter_bytes)
    assert letter.truncated
    assert letter.value == value[:PREVIEW_BYTES]
    assert letter.key == b"k" * KEY_PREVIEW_BYTES
    assert header(letter.headers, names.TRUNCATED_FROM) == "3000000"
    assert header(letter.headers, RECEIPT_ID) == RECEIPT.decode()
    assert header(letter.headers, "big") == "b" * HEADER_PREVIEW_BYTES
    assert (header(letter.headers, names.SOURCE_TOPIC), header(letter.headers,
            names.SOURCE_PARTITION), header(letter.headers, names.SOURCE_OFFSET)) == (
        "acme.raw", "4", "325")
    assert header(letter.headers, names.REASON) == "too-large"
    assert letter.size <= largest_preview_bytes() <= BUDGET.dead_letter_bytes


def test_a_record_without_key_or_value_stays_so() -> None:
    letter = dead_letter(None, None, [("h", b"x" * 10)], Source(), reason="failed", error="e",
                         agent="dedup", limit_bytes=100)
    assert letter.truncated
    assert (letter.key, letter.value) == (None, None)
    assert header(letter.headers, names.TRUNCATED_FROM) == "0"
