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


@functools.lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives `key`.

    Cached: murmur2 is pure Python here, and keys repeat (a contact's messages, the
    statuses of one message)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


class BundleWriter:
    """Accumulates the events of one bundle; `value()` is the record to send."""

    __slots__ = ("_parts", "size")

    def __init__(self) -> None:
        self._parts: list[bytes] = [MAGIC]
        self.size = len(MAGIC)

    def add(
        self, event_id: str, event_type: str, key: bytes, value: bytes, headers: Headers
    ) -> None:
        """Append one event; one whose id, type, key or a header name is longer than 65535
        bytes (or a value or header value longer than 4 GiB) is a KeyedBundleError, and
        leaves the bundle as it was."""
        encoded_id, encoded_type = event_id.encode(), event_type.encode()
        parts = self._parts
        before = len(parts)
        try:
            parts.append(
                _ENTRY.pack(len(encoded_id), len(encoded_type), len(key), len(headers),
                            len(value))
            )
            parts += (encoded_id, encoded_type, key)
            size = _ENTRY.size + len(encoded_id) + len(encoded_type) + len(key) + len(value)
            for name, header_value in headers:
                encoded_name = name.encode()
                parts += (_HEADER.pack(len(encoded_name), len(header_value)), encoded_name,
                          header_value)
                size += _HEADER.size + len(encoded_name) + len(header_value)
        except struct.error as exc:
            del parts[before:]
            raise KeyedBundleError(
                f"event {event_id[:60]!r} does not fit the bundle format: {exc}"
            ) from exc
        parts.append(value)
        self.size += size

    def value(self) -> bytes:
        return b"".join(self._parts)


def read_keyed(message: KeyedRecord) -> list[KeyedEvent]:
    """The events of one keyed record, in the order the router wrote them."""
    value = message.value or b""
    if not value.startswith(MAGIC):
        return [_single(message, value)]
    events: list[KeyedEvent] = []
    view = memoryview(value)
    position, end = len(MAGIC), len(value)
    try:
        while position < end:
            id_len, type_len, key_len, header_count, value_len = _ENTRY.unpack_from(
                view, position
            )
            position += _ENTRY.size
            event_id = str(view[position : position + id_len], "utf-8")
            position += id_len
            event_type = str(view[position : position + type_len], "utf-8")
            position += type_len
            key = bytes(view[position : position + key_len])
            position += key_len
            headers: Headers = []
            for _ in range(header_count):
                name_len, header_len = _HEADER.unpack_from(view, position)
                position += _HEADER.size
                name = str(view[position : position + name_len], "utf-8")
                position += name_len
                headers.append((name, bytes(view[position : position + header_len])))
                position += header_len
            body = bytes(view[position : position + value_len])
            position += value_len
            if position > end:
                raise KeyedBundleError("bundle truncated")
            headers += ((names.EVENT_ID, event_id.encode()),
                        (names.EVENT_TYPE, event_type.encode()))
            events.append(KeyedEvent(event_id, event_type, key, body, headers))
    except (struct.error, UnicodeDecodeError) as exc:
        raise KeyedBundleError(f"malformed bundle: {exc}") from exc
    return events


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
