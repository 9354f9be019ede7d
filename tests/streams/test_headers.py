"""Record headers: reading them from either client, and the one dead-letter builder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from streams import headers as names
from streams.headers import context, dead_letter_headers, header, headers_of


@dataclass(frozen=True)
class Consumed:
    """Where a consumed record was, and its headers as a client hands them over."""

    topic: str = "acme.message.text"
    partition: int = 2
    offset: int = 41
    headers: Any = None


@pytest.mark.parametrize(
    "given",
    [
        [("a", b"1"), ("b", b"2")],  # aiokafka: a sequence of pairs
        (("a", b"1"), ("b", b"2")),
        {"a": b"1", "b": b"2"},  # Faust: a mapping
    ],
)
def test_headers_are_pairs_whichever_client_consumed_the_record(given: Any) -> None:
    assert headers_of(Consumed(headers=given)) == [("a", b"1"), ("b", b"2")]


def test_a_record_without_headers_has_none() -> None:
    assert headers_of(Consumed(headers=None)) == []
    assert headers_of(Consumed(headers=[])) == []
    assert headers_of(object()) == []


def test_a_header_is_its_first_value_as_text_or_empty() -> None:
    pairs = [("a", b"caf\xc3\xa9"), ("a", b"second"), ("bad", b"\xff")]
    assert header(pairs, "a") == "café"
    assert header(pairs, "bad") == "\ufffd"
    assert header(pairs, "missing") == ""


def test_a_dead_letter_keeps_the_headers_and_says_why_who_and_where() -> None:
    own = [("qikflow-receipt-id", b"r-1")]
    built = dead_letter_headers(own, Consumed(), reason="failed", error="BoomError: boom",
                                agent="optout")
    assert built == [
        ("qikflow-receipt-id", b"r-1"),
        (names.REASON, b"failed"),
        (names.ERROR, b"BoomError: boom"),
        (names.FAILED_AGENT, b"optout"),
        (names.SOURCE_TOPIC, b"acme.message.text"),
        (names.SOURCE_PARTITION, b"2"),
        (names.SOURCE_OFFSET, b"41"),
    ]
    from_sink = dead_letter_headers([], Consumed(), reason="undecodable", error="x",
                                    sink="postgres")
    assert (names.FAILED_SINK, b"postgres") in from_sink
    assert names.FAILED_AGENT not in dict(from_sink)


def test_a_long_error_is_cut_to_max_error_bytes() -> None:
    built = dict(dead_letter_headers([], Consumed(), reason="failed", error="é" * 5000))
    assert names.MAX_ERROR_BYTES == 2000
    assert len(built[names.ERROR]) == names.MAX_ERROR_BYTES
    assert built[names.ERROR].decode("utf-8") == "é" * 1000


def test_context_names_topic_partition_and_offset() -> None:
    assert context(Consumed()) == "acme.message.text[2]@41"
