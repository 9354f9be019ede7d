"""Record headers the streams and sinks add, named once here, and the helpers that read them
and build dead letters.

The ingest headers (`ingest.record`) travel unchanged on every record made from a webhook.
A dead letter, whichever stage sends it, carries the record's own headers, then why it
failed (`qikflow-reason`, a short word an operator filters by, and `qikflow-error`, the
error text capped at MAX_ERROR_BYTES), who failed (`qikflow-failed-agent` or
`qikflow-failed-sink`) and where the record was (`qikflow-source-topic`, `-partition`,
`-offset`). Every value a dead letter adds is capped (DEAD_LETTER_HEADER_BYTES), so the
size of a dead letter is known in advance; one that would still not fit the dead-letter
topic carries a preview of the record instead (`dead_letters.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

Headers = list[tuple[str, bytes]]

EVENT_ID = "qikflow-event-id"
EVENT_TYPE = "qikflow-event-type"
ERROR = "qikflow-error"
REASON = "qikflow-reason"
FAILED_AGENT = "qikflow-failed-agent"
FAILED_SINK = "qikflow-failed-sink"
SOURCE_TOPIC = "qikflow-source-topic"
SOURCE_PARTITION = "qikflow-source-partition"
SOURCE_OFFSET = "qikflow-source-offset"
# On a dead letter that carries a preview of the record: the record's size in bytes.
TRUNCATED_FROM = "qikflow-truncated-from-bytes"

# Why a record was dead-lettered, as it appears in REASON.
UNDECODABLE = "undecodable"  # not JSON, or not an object
FAILED = "failed"  # handling it raised
UNDELIVERABLE = "undeliverable"  # the broker refused an output of it
TOO_LARGE = "too-large"  # an output of it is larger than its topic's budget

# The routing stages' names, as they appear in FAILED_AGENT.
ROUTER = "router"
DEDUP = "dedup"

# An error text can quote a whole record (a validation error, a driver message); the
# header keeps enough to diagnose and leaves the record itself the room it needs.
MAX_ERROR_BYTES = 2000
MAX_REASON_BYTES = 64
# Kafka's longest topic name; agent and sink names are capped the same.
MAX_NAME_BYTES = 249

# The largest value of each header a dead letter adds (FAILED_AGENT or FAILED_SINK).
DEAD_LETTER_HEADER_BYTES: tuple[tuple[str, int], ...] = (
    (REASON, MAX_REASON_BYTES),
    (ERROR, MAX_ERROR_BYTES),
    (FAILED_AGENT, MAX_NAME_BYTES),
    (SOURCE_TOPIC, MAX_NAME_BYTES),
    (SOURCE_PARTITION, 11),
    (SOURCE_OFFSET, 20),
    (TRUNCATED_FROM, 20),
)


class Located(Protocol):
    """A consumed record, from Faust (`Message`) or aiokafka (`ConsumerRecord`)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


def headers_of(message: object) -> Headers:
    """The headers of a consumed record (Faust gives a mapping or a list) as (name, bytes)."""
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None = getattr(
        message, "headers", None
    )
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def header(headers: Iterable[tuple[str, bytes]], name: str) -> str:
    """The first value of header `name` as text, or "" when it is absent."""
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return ""


def context(record: Located) -> str:
    """Where a record came from, for log lines: `topic[partition]@offset`."""
    return f"{record.topic}[{record.partition}]@{record.offset}"


def dead_letter_headers(
    headers: Iterable[tuple[str, bytes]],
    source: Located,
    *,
    reason: str,
    error: str,
    agent: str | None = None,
    sink: str | None = None,
) -> Headers:
    """A dead letter's headers: the record's own, then why, who and where it failed."""
    failed = [(FAILED_AGENT, agent.encode()[:MAX_NAME_BYTES])] if agent is not None else []
    if sink is not None:
        failed.append((FAILED_SINK, sink.encode()[:MAX_NAME_BYTES]))
    return [
        *headers,
        (REASON, reason.encode()[:MAX_REASON_BYTES]),
        (ERROR, error.encode("utf-8", "replace")[:MAX_ERROR_BYTES]),
        *failed,
        (SOURCE_TOPIC, source.topic.encode()[:MAX_NAME_BYTES]),
        (SOURCE_PARTITION, str(source.partition).encode()),
        (SOURCE_OFFSET, str(source.offset).encode()),
    ]
