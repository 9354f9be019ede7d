"""Dead letters that always fit `<prefix>.dlq`: the failed record whole, or a bounded preview.

A dead letter is the failed record's key, value and headers plus why, who and where it
failed (`headers.dead_letter_headers`). The dead-letter topic is sized for the largest
record the worker writes (`budget.py`), so a record within the budget is dead-lettered
whole. A record beyond it (an event that grew past the budget, a raw record another
producer wrote past the ingest's limit) would be refused by the topic too, and a dead
letter that cannot be written stops the stage; its dead letter is therefore a preview:
the first PREVIEW_BYTES of the value and KEY_PREVIEW_BYTES of the key, at most
MAX_PREVIEW_HEADERS of the record's headers, each cut to HEADER_PREVIEW_BYTES, and
`qikflow-truncated-from-bytes` with the value's full size. The full bytes stay where the
source coordinates and the receipt id point: `<prefix>.raw` keeps every body.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from qikflow.size_budget import record_batch_bytes
from streams import headers as names
from streams.headers import Headers, Located, dead_letter_headers

PREVIEW_BYTES = 65_536
KEY_PREVIEW_BYTES = 1024
HEADER_PREVIEW_BYTES = 1024
MAX_PREVIEW_HEADERS = 64


class DeadLetter(NamedTuple):
    """The record to send to `<prefix>.dlq`."""

    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def size(self) -> int:
        """Its size as a one-record batch, as the producer and the topic count it."""
        return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(
            self.key, self.value, list(self.headers)))

    @property
    def truncated(self) -> bool:
        return any(name == names.TRUNCATED_FROM for name, _ in self.headers)


def dead_letter(
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]],
    source: Located,
    *,
    reason: str,
    error: str,
    agent: str,
    limit_bytes: int,
) -> DeadLetter:
    """The dead letter of a record: whole when it fits in `limit_bytes`, else a preview."""
    own = list(headers)
    whole = DeadLetter(key, value, dead_letter_headers(own, source, reason=reason, error=error,
                                                       agent=agent))
    if whole.size <= limit_bytes:
        return whole
    kept = [(name.encode()[:names.MAX_NAME_BYTES].decode("utf-8", "ignore"),
             bytes(header_value[:HEADER_PREVIEW_BYTES]))
            for name, header_value in own[:MAX_PREVIEW_HEADERS]]
    size = len(value or b"")
    preview_headers = dead_letter_headers(kept, source, reason=reason, error=error, agent=agent)
    preview_headers.append((names.TRUNCATED_FROM, str(size).encode()))
    return DeadLetter(None if key is None else key[:KEY_PREVIEW_BYTES],
                      None if value is None else value[:PREVIEW_BYTES], preview_headers)


def largest_preview_bytes() -> int:
    """The largest preview dead letter: what the dead-letter topic must hold at least."""
    headers = [("h" * names.MAX_NAME_BYTES, HEADER_PREVIEW_BYTES)] * MAX_PREVIEW_HEADERS
    return record_batch_bytes(PREVIEW_BYTES, key_bytes=KEY_PREVIEW_BYTES,
                              headers=[*headers, *names.DEAD_LETTER_HEADER_BYTES])
