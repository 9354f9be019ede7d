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
the router wrote before bundles, and what replaying a dedup dead letter produces).
"""

from __future__ import annotations

import functools
import struct
from typing import TYPE_CHECKING, NamedTuple

from aiokafka.partitioner import murmur2

from streams import headers as names
from streams.headers import Headers, header, headers_of

if TYPE_CHECKING:
    from faust.types import Message

MAGIC = b"qkb\x01"
_ENTRY = struct.Struct(">HHHHI")
_HEADER = struct.Struct(">HI")


class KeyedBundleError(ValueError):
    """A keyed record that is neither a bundle nor a single event with id and type headers."""


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

    __slots__ = ("_parts", "count", "size")

    def __init__(self) -> None:
        self._parts: list[bytes] = [MAGIC]
        self.size = len(MAGIC)
        self.count = 0

    def add(
        self, event_id: str, event_type: str, key: bytes, value: bytes, headers: Headers
    ) -> None:
        encoded_id, encoded_type = event_id.encode(), event_type.encode()
        parts = self._parts
        parts.append(
            _ENTRY.pack(len(encoded_id), len(encoded_type), len(key), len(headers), len(value))
        )
        parts += (encoded_id, encoded_type, key)
        size = _ENTRY.size + len(encoded_id) + len(encoded_type) + len(key) + len(value)
        for name, header_value in headers:
            encoded_name = name.encode()
            parts += (_HEADER.pack(len(encoded_name), len(header_value)), encoded_name,
                      header_value)
            size += _HEADER.size + len(encoded_name) + len(header_value)
        parts.append(value)
        self.size += size
        self.count += 1

    def value(self) -> bytes:
        return b"".join(self._parts)


def read_keyed(message: Message) -> list[KeyedEvent]:
    """The events of one keyed record, in the order the router wrote them."""
    value = message.value or b""
    if not value.startswith(MAGIC):
        return [_single(message)]
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


def _single(message: Message) -> KeyedEvent:
    headers = headers_of(message)
    event_id = header(headers, names.EVENT_ID)
    event_type = header(headers, names.EVENT_TYPE)
    if not event_id or not event_type:
        raise KeyedBundleError("keyed record is no bundle and has no event id or type header")
    return KeyedEvent(event_id, event_type, message.key, message.value or b"", headers)
