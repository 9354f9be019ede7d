"""Records of the internal keyed topic: the events of one router batch bound for one partition.

Faust costs some 40 µs per consumed record, so one keyed record per event would make dedup
pay that again for every event. The router therefore packs the events of one `take` batch
that go to one keyed partition into one record, a bundle, and dedup pays the per-record cost
once per bundle. The partition is derived from `Event.key` exactly as Kafka's default
partitioner would (murmur2), so every copy of one event id still meets in one partition.

Bundle format, version 1 (all integers big-endian, unsigned):

    b"qkb\\x01"                                    magic and version
    per event:
      u16 id length, u16 type length, u16 key length, u16 header count, u32 value length
      event id (utf-8), event type (utf-8), key
      per header: u16 name length, u32 value length, name (utf-8), value
      value: the `Event` JSON, byte for byte what goes to the per-type topic

The headers are the ingest headers of the raw record; `qikflow-event-id` and
`qikflow-event-type` are added back from the id and type when a bundle is read. A record
without the magic is read as version 0: one event JSON, id and type in its headers (what
the router wrote before bundles, and what replaying a dedup dead letter produces). A record
with the magic's first three bytes and another version byte is an error: no worker that
reads it should guess.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from aiokafka.partitioner import murmur2

from streams import headers as names
from streams.headers import Headers, header, headers_of

MAGIC = b"qkb\x01"
VERSIONS = (0, 1)  # the versions `read_keyed` reads
_ENTRY = struct.Struct(">HHHHI")
_HEADER = struct.Struct(">HI")


class KeyedBundleError(ValueError):
    """A keyed record that is neither a bundle nor a single event with id and type headers,
    or an event too big for the bundle format."""


class KeyedRecord(Protocol):
    """A consumed keyed record: a Faust `Message` or an aiokafka `ConsumerRecord`."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class KeyedEvent(NamedTuple):
    """One event read from the keyed topic, with the headers its per-type record carries."""

    event_id: str
    event_type: str
    key: bytes | None
    value: bytes
    headers: Headers


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives `key`."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


class PartitionCache:
    """`partition_for` over a fixed partition count, remembering recent keys.

    murmur2 is pure Python here, and keys repeat (a contact's messages, the statuses of one
    message), so the router caches it. The cache is bounded by bytes, not entries: keys
    longer than MAX_CACHED_KEY_BYTES are not kept, and once the keys held reach
    `max_bytes` (each counted with ENTRY_OVERHEAD_BYTES for the dict slot and the objects)
    it starts over, which costs one murmur2 per key until it is warm again.
    """

    MAX_CACHED_KEY_BYTES = 256
    ENTRY_OVERHEAD_BYTES = 120

    __slots__ = ("_cache", "_partitions", "bytes", "max_bytes")

    def __init__(self, partitions: int, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._partitions = partitions
        self._cache: dict[bytes, int] = {}
        self.max_bytes = max_bytes
        self.bytes = 0

    def __call__(self, key: bytes) -> int:
        partition = self._cache.get(key)
        if partition is not None:
            return partition
        partition = partition_for(key, self._partitions)
        if len(key) <= self.MAX_CACHED_KEY_BYTES:
            cost = len(key) + self.ENTRY_OVERHEAD_BYTES
            if self.bytes + cost > self.max_bytes:
                self._cache.clear()
                self.bytes = 0
            self._cache[key] = partition
            self.bytes += cost
        return partition

    def __len__(self) -> int:
        return len(self._cache)


class Entry(NamedTuple):
    """One event encoded for a bundle; `size` is the bytes it adds to the bundle."""

    parts: tuple[bytes, ...]
    size: int


def encode_entry(
    event_id: str, event_type: str, key: bytes, value: bytes, headers: Headers
) -> Entry:
    """One event as bundle bytes; an id, type, key or header name longer than 65535 bytes
    (or a value or header value longer than 4 GiB) is a KeyedBundleError."""
    encoded_id, encoded_type = event_id.encode(), event_type.encode()
    try:
        parts = [_ENTRY.pack(len(encoded_id), len(encoded_type), len(key), len(headers),
                             len(value)),
                 encoded_id, encoded_type, key]
        for name, header_value in headers:
            encoded_name = name.encode()
            parts += (_HEADER.pack(len(encoded_name), len(header_value)), encoded_name,
                      header_value)
    except struct.error as exc:
        raise KeyedBundleError(
            f"event {event_id[:60]!r} does not fit the bundle format: {exc}"
        ) from exc
    parts.append(value)
    return Entry(tuple(parts), sum(map(len, parts)))


def entry_bytes(id_bytes: int, type_bytes: int, key_bytes: int, value_bytes: int,
                headers: Iterable[tuple[str, int]]) -> int:
    """The bytes an entry of these sizes adds to a bundle (header: name, value size)."""
    header_bytes = sum(_HEADER.size + len(name.encode()) + size for name, size in headers)
    return _ENTRY.size + id_bytes + type_bytes + key_bytes + value_bytes + header_bytes


class BundleWriter:
    """Accumulates the events of one bundle; `value()` is the record to send."""

    __slots__ = ("_parts", "size")

    def __init__(self) -> None:
        self._parts: list[bytes] = [MAGIC]
        self.size = len(MAGIC)

    def append(self, entry: Entry) -> None:
        """Append one encoded event (`encode_entry`); this cannot fail."""
        self._parts += entry.parts
        self.size += entry.size

    def add(
        self, event_id: str, event_type: str, key: bytes, value: bytes, headers: Headers
    ) -> None:
        """Encode and append one event; a KeyedBundleError leaves the bundle as it was."""
        self.append(encode_entry(event_id, event_type, key, value, headers))

    def value(self) -> bytes:
        return b"".join(self._parts)


def read_keyed(message: KeyedRecord) -> list[KeyedEvent]:
    """The events of one keyed record, in the order the router wrote them."""
    value = message.value or b""
    if not value.startswith(MAGIC):
        return [_single(message, value)]
    events: list[KeyedEvent] = []
    position, end = len(MAGIC), len(value)
    unpack_entry, entry_size = _ENTRY.unpack_from, _ENTRY.size
    unpack_header, header_size = _HEADER.unpack_from, _HEADER.size
    header_name = _header_name
    try:
        while position < end:
            id_len, type_len, key_len, header_count, value_len = unpack_entry(value, position)
            position += entry_size
            encoded_id = value[position : position + id_len]
            position += id_len
            encoded_type = value[position : position + type_len]
            position += type_len
            key = value[position : position + key_len]
            position += key_len
            headers: Headers = []
            for _ in range(header_count):
                name_len, header_len = unpack_header(value, position)
                position += header_size
                encoded_name = value[position : position + name_len]
                name = header_name(encoded_name)
                position += name_len
                headers.append((name, value[position : position + header_len]))
                position += header_len
            body = value[position : position + value_len]
            position += value_len
            if position > end:
                raise KeyedBundleError("bundle truncated")
            headers += ((names.EVENT_ID, encoded_id), (names.EVENT_TYPE, encoded_type))
            events.append(KeyedEvent(encoded_id.decode(), encoded_type.decode(), key, body,
                                     headers))
    except (struct.error, UnicodeDecodeError) as exc:
        raise KeyedBundleError(f"malformed bundle: {exc}") from exc
    return events


@functools.lru_cache(maxsize=1024)
def _header_name(encoded: bytes) -> str:
    """A header name from its bytes (UnicodeDecodeError when it is no UTF-8): every event
    of a bundle carries the same few, so they are decoded once."""
    return encoded.decode()


def _single(message: KeyedRecord, value: bytes) -> KeyedEvent:
    """Version 0: one event JSON, its id and type in the record's headers."""
    if value[:3] == MAGIC[:3] and len(value) > 3:
        raise KeyedBundleError(
            f"keyed bundle version {value[3]} is unknown; this worker reads versions "
            f"{', '.join(map(str, VERSIONS))}"
        )
    headers = headers_of(message)
    event_id = header(headers, names.EVENT_ID)
    event_type = header(headers, names.EVENT_TYPE)
    if not event_id or not event_type:
        raise KeyedBundleError("keyed record is no bundle and has no event id or type header")
    return KeyedEvent(event_id, event_type, message.key, value, headers)
