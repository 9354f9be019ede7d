"""The keyed bundle codec (`streams/_keyed.py`): what the router writes, dedup reads back,
in every format version it claims to read, and damage is an error, never a wrong event."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from ingest.record import RECEIPT_ID
from streams._keyed import (
    MAGIC,
    BundleWriter,
    KeyedBundleError,
    KeyedEvent,
    PartitionCache,
    encode_entry,
    entry_bytes,
    partition_for,
    read_keyed,
)
from streams.events import MAX_ID_BYTES
from streams.headers import EVENT_ID, EVENT_TYPE, Headers

INGEST_HEADERS: Headers = [(RECEIPT_ID, b"0193a1b2-c3d4"), ("qikflow-account", b"acme")]
# Where the first event's id starts: the magic, then the entry's five lengths.
FIRST_ID_AT = len(MAGIC) + struct.calcsize(">HHHHI")
U16_MAX = 65_535


@dataclass(frozen=True)
class Record:
    """A consumed keyed record as dedup gets it: key, value and headers."""

    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


def bundled(event_id: str, event_type: str, key: bytes, value: bytes,
            headers: Headers) -> KeyedEvent:
    """The event dedup reads for what the router added: the id and type come back as headers."""
    return KeyedEvent(event_id, event_type, key, value,
                      [*headers, (EVENT_ID, event_id.encode()), (EVENT_TYPE, event_type.encode())])


def two_events() -> tuple[BundleWriter, list[KeyedEvent]]:
    writer = BundleWriter()
    writer.add("wamid.1", "message.text", b"+919876543210", b'{"n":1}', INGEST_HEADERS)
    writer.add("S1:read", "status.read", b"S1", b'{"n":2}', [])
    return writer, [
        bundled("wamid.1", "message.text", b"+919876543210", b'{"n":1}', INGEST_HEADERS),
        bundled("S1:read", "status.read", b"S1", b'{"n":2}', []),
    ]


def test_version_1_a_bundle_reads_back_every_event_in_order() -> None:
    writer, events = two_events()
    value = writer.value()
    assert value.startswith(b"qkb\x01")
    assert writer.size == len(value)
    assert read_keyed(Record(None, value)) == events


def test_version_0_one_event_with_id_and_type_headers() -> None:
    headers = [*INGEST_HEADERS, (EVENT_ID, b"wamid.1"), (EVENT_TYPE, b"message.text")]
    record = Record(b"+919876543210", b'{"n":1}', headers)
    assert read_keyed(record) == [
        KeyedEvent("wamid.1", "message.text", b"+919876543210", b'{"n":1}', headers)
    ]


@pytest.mark.parametrize(
    "headers",
    [[], [(EVENT_ID, b"wamid.1")], [(EVENT_TYPE, b"message.text")], [(EVENT_ID, b""),
                                                                     (EVENT_TYPE, b"x")]],
)
def test_version_0_without_an_id_or_a_type_is_an_error(headers: Headers) -> None:
    with pytest.raises(KeyedBundleError, match="no bundle and has no event id or type header"):
        read_keyed(Record(b"k", b'{"n":1}', headers))


def test_an_unknown_version_is_an_error_that_names_it() -> None:
    writer, _ = two_events()
    value = b"qkb\x02" + writer.value()[len(MAGIC):]
    with pytest.raises(KeyedBundleError, match="version 2 is unknown; this worker reads "
                                               "versions 0, 1"):
        read_keyed(Record(None, value))


def test_an_empty_bundle_holds_no_events() -> None:
    writer = BundleWriter()
    assert writer.value() == MAGIC
    assert writer.size == len(MAGIC)
    assert read_keyed(Record(None, writer.value())) == []


def test_a_cut_bundle_is_an_error_or_the_events_before_the_cut_never_a_wrong_event() -> None:
    writer, events = two_events()
    value = writer.value()
    first_ends = value.index(b'{"n":1}') + len(b'{"n":1}')
    for cut in range(len(value)):
        record = Record(None, value[:cut])
        if cut == len(MAGIC):
            assert read_keyed(record) == []
        elif cut == first_ends:
            # The format has no event count: a cut between two events is a shorter bundle.
            assert read_keyed(record) == events[:1]
        else:
            with pytest.raises(KeyedBundleError):
                read_keyed(record)


@pytest.mark.parametrize("at", [FIRST_ID_AT, FIRST_ID_AT + len("wamid.1")])
def test_a_non_utf8_id_or_type_is_an_error(at: int) -> None:
    writer, _ = two_events()
    value = writer.value()
    damaged = value[:at] + b"\xff" + value[at + 1:]
    with pytest.raises(KeyedBundleError, match="malformed bundle"):
        read_keyed(Record(None, damaged))


def test_ids_keys_and_header_names_up_to_65535_bytes_fit() -> None:
    longest = "i" * U16_MAX
    writer = BundleWriter()
    writer.add(longest, "message.text", b"k" * U16_MAX, b"{}", [("h" * U16_MAX, b"v")])
    assert read_keyed(Record(None, writer.value())) == [
        bundled(longest, "message.text", b"k" * U16_MAX, b"{}", [("h" * U16_MAX, b"v")])
    ]


@pytest.mark.parametrize(
    ("event_id", "key", "headers"),
    [
        ("i" * (U16_MAX + 1), b"k", []),
        ("wamid.2", b"k" * (U16_MAX + 1), []),
        # A header is packed after the id, type and key: they must not stay in the bundle.
        ("wamid.2", b"k", [("ok", b"v"), ("h" * (U16_MAX + 1), b"v")]),
    ],
)
def test_an_event_too_big_for_the_format_is_an_error_and_leaves_the_bundle_as_it_was(
    event_id: str, key: bytes, headers: Headers
) -> None:
    writer, events = two_events()
    size = writer.size
    with pytest.raises(KeyedBundleError, match="does not fit the bundle format"):
        writer.add(event_id, "message.text", key, b"{}", headers)
    assert writer.size == size
    assert read_keyed(Record(None, writer.value())) == events


texts = st.text(st.characters(codec="utf-8"), max_size=20)
events_to_bundle = st.lists(
    st.tuples(texts, texts, st.binary(max_size=20), st.binary(max_size=50),
              st.lists(st.tuples(texts, st.binary(max_size=20)), max_size=4)),
    max_size=6,
)


@given(events_to_bundle)
def test_any_events_make_the_round_trip(
    events: list[tuple[str, str, bytes, bytes, Headers]],
) -> None:
    writer = BundleWriter()
    for event in events:
        writer.add(*event)
    assert writer.size == len(writer.value())
    assert read_keyed(Record(None, writer.value())) == [bundled(*event) for event in events]


@given(st.binary(min_size=1, max_size=40), st.integers(1, 64))
def test_the_partition_is_the_one_kafkas_default_partitioner_gives_the_key(
    key: bytes, partitions: int
) -> None:
    every = list(range(partitions))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, every, every)


def test_the_partition_cache_answers_as_murmur2_does() -> None:
    cache = PartitionCache(6)
    keys = [f"+9198{n:08d}".encode() for n in range(500)] + [b"k" * 1024]
    assert [cache(key) for key in keys * 2] == [partition_for(key, 6) for key in keys * 2]


def test_the_partition_cache_is_bounded_by_bytes_and_keeps_no_long_key() -> None:
    # 450 statuses with 900 KB message ids once took a worker from 87 to 611 MB; ids are
    # now at most MAX_ID_BYTES, and keys past MAX_CACHED_KEY_BYTES are not kept at all.
    default = PartitionCache(6)
    assert default.max_bytes == 8 * 1024 * 1024
    for n in range(450):
        default(b"%d" % n + b"i" * MAX_ID_BYTES)
    assert len(default) == 0 and default.bytes == 0
    small = PartitionCache(6, max_bytes=10_000)
    for n in range(5_000):
        small(b"wamid.%d" % n + b"x" * 200)
        assert small.bytes <= small.max_bytes
    assert 0 < len(small) < 5_000


def test_an_entry_adds_exactly_its_encoded_size_and_the_budget_counts_it() -> None:
    entry = encode_entry("wamid.1", "message.text", b"+919876543210", b'{"n":1}',
                         INGEST_HEADERS)
    writer = BundleWriter()
    writer.append(entry)
    assert writer.size == len(writer.value()) == len(MAGIC) + entry.size
    sizes = [(name, len(value)) for name, value in INGEST_HEADERS]
    assert entry.size == entry_bytes(len("wamid.1"), len("message.text"), 13, 7, sizes)
