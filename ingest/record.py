"""The raw-record contract: what ingest writes to `<prefix>.raw`, read back by the streams.

The record value is the webhook body, byte for byte. Everything ingest knows about the
request travels in Kafka record headers named here, once. Each header value is capped
(FIELD_CAPS_BYTES), so the largest record the ingest can write is known in advance and
`<prefix>.raw` can be sized for it (see raw_topic.py).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.record.default_records import DefaultRecordBatchBuilder

# Record header names. Values are UTF-8 bytes.
RECEIPT_ID = "qikflow-receipt-id"
RECEIVED_AT_MS = "qikflow-received-at-ms"
SOURCE = "qikflow-source"
ACCOUNT = "qikflow-account"
CONTENT_TYPE = "qikflow-content-type"
REMOTE_ADDR = "qikflow-remote-addr"

# The most bytes a header value may carry. Longer values are cut (at a UTF-8 boundary)
# when the record is made from a request: the body is what must arrive intact, and a
# 200 KB Content-Type must not make a record Kafka refuses.
FIELD_CAPS_BYTES = {
    RECEIPT_ID: 36,
    RECEIVED_AT_MS: 20,
    SOURCE: 64,
    ACCOUNT: 64,
    CONTENT_TYPE: 256,
    REMOTE_ADDR: 64,
}


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One webhook body as received, plus what ingest knew about its request."""

    body: bytes
    receipt_id: str
    received_at_ms: int
    source: str = "qikchat"
    account: str = ""
    content_type: str = ""
    remote_addr: str = ""

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (RECEIPT_ID, self.receipt_id.encode()),
            (RECEIVED_AT_MS, str(self.received_at_ms).encode()),
            (SOURCE, self.source.encode()),
            (ACCOUNT, self.account.encode()),
            (CONTENT_TYPE, self.content_type.encode()),
            (REMOTE_ADDR, self.remote_addr.encode()),
        ]

    @classmethod
    def received(cls, body: bytes, *, source: str, account: str, content_type: str,
                 remote_addr: str) -> RawRecord:
        """A record for a body received now, with a new receipt id and capped headers."""
        return cls(
            body=body,
            receipt_id=new_receipt_id(),
            received_at_ms=time.time_ns() // 1_000_000,
            source=cap(source, FIELD_CAPS_BYTES[SOURCE]),
            account=cap(account, FIELD_CAPS_BYTES[ACCOUNT]),
            content_type=cap(content_type, FIELD_CAPS_BYTES[CONTENT_TYPE]),
            remote_addr=cap(remote_addr, FIELD_CAPS_BYTES[REMOTE_ADDR]),
        )

    @classmethod
    def from_kafka(cls, body: bytes | None, headers: Iterable[tuple[str, bytes]]) -> RawRecord:
        """Rebuild a record from a consumed Kafka record; missing headers become empty."""
        found = {key: value.decode("utf-8", "replace") for key, value in headers}
        received = found.get(RECEIVED_AT_MS, "")
        return cls(
            body=body or b"",
            receipt_id=found.get(RECEIPT_ID, ""),
            received_at_ms=int(received) if received.isdigit() else 0,
            source=found.get(SOURCE, ""),
            account=found.get(ACCOUNT, ""),
            content_type=found.get(CONTENT_TYPE, ""),
            remote_addr=found.get(REMOTE_ADDR, ""),
        )


def cap(value: str, limit_bytes: int) -> str:
    """`value` cut to at most `limit_bytes` of UTF-8, never inside a character."""
    encoded = value.encode()
    if len(encoded) <= limit_bytes:
        return value
    return encoded[:limit_bytes].decode("utf-8", "ignore")


def largest_headers() -> list[tuple[str, bytes]]:
    """Headers of the largest size a record can carry, for sizing the raw topic."""
    return [(name, b"x" * size) for name, size in FIELD_CAPS_BYTES.items()]


def batch_bytes(body_bytes: int) -> int:
    """The largest record batch that holds one body of `body_bytes` with capped headers:
    what `<prefix>.raw` must take, whichever process (ingest or worker) creates it."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(
        None, bytes(body_bytes), largest_headers()))


class _ReceiptIds:
    """UUIDv7 (RFC 9562) generator: unique, and sortable by creation time within a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0
        # Seeded from the OS once: uniqueness needs unpredictable bits per process, not a
        # system call per id (this runs once per webhook).
        self._random = random.Random(os.urandom(32))

    def new(self) -> str:
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms <= self._last_ms:
                # Same millisecond (or a clock step back): bump the 12-bit counter so ids
                # stay ordered; borrow the next millisecond when it overflows.
                self._counter += 1
                if self._counter > 0xFFF:
                    self._last_ms += 1
                    self._counter = 0
                now_ms = self._last_ms
            else:
                self._last_ms = now_ms
                self._counter = self._random.getrandbits(10)
            counter = self._counter
            random_tail = self._random.getrandbits(62)
        value = (now_ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76 | counter << 64 | 0b10 << 62 | random_tail
        hexed = f"{value:032x}"
        return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


new_receipt_id = _ReceiptIds().new
