"""Sizes of Kafka records and of the topics that must hold them, shared by every stage.

Kafka limits a record batch, not a record: a topic takes batches up to its
`max.message.bytes` (the broker's `message.max.bytes` when the topic does not set it), and a
producer refuses, before sending, a record whose one-record batch is above its
`max_request_size`. So a stage that can write a record of N bytes needs topics that take
batches of max(N, its producer's batch size) and a producer whose request size is at
least N. This module computes those figures and says, in one line, when a topic is too
small; each stage derives its own record sizes from QIKFLOW_MAX_BODY_BYTES.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka.record.default_records import DefaultRecordBatchBuilder

TOPIC_LIMIT = "max.message.bytes"
BROKER_LIMIT = "message.max.bytes"

# (header name, largest value in bytes)
HeaderSizes = Iterable[tuple[str, int]]


def record_batch_bytes(value_bytes: int, *, key_bytes: int = 0,
                       headers: HeaderSizes = ()) -> int:
    """The largest one-record batch holding a value, a key (0: none) and headers of these
    sizes: what a producer checks against `max_request_size`, a topic against its limit."""
    header_values = [(name, bytes(size)) for name, size in headers]
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(
        bytes(key_bytes) if key_bytes else None, bytes(value_bytes), header_values))


def topic_limit_bytes(record_bytes: int, producer_batch_bytes: int) -> int:
    """The `max.message.bytes` a topic needs: one record alone, or a full producer batch."""
    return max(record_bytes, producer_batch_bytes)


@dataclass(frozen=True, slots=True)
class TopicNeed:
    """What one topic must take: batches of `limit_bytes`, because of `why`.

    `why` says what makes records that big, e.g. "events of a body of
    QIKFLOW_MAX_BODY_BYTES=1048576"; `setting` is the variable that lowers the need.
    """

    topic: str
    limit_bytes: int
    why: str
    setting: str

    def problem(self, configs: Mapping[str, str], bootstrap: str) -> str | None:
        """Why the topic, as the broker describes it (`configs`), is too small; None if it
        is big enough."""
        value = configs.get(TOPIC_LIMIT, "")
        if not value.isdigit():
            return (f"Kafka at {bootstrap} did not report {TOPIC_LIMIT} of {self.topic} "
                    f"(got {value!r}); it must take {self.limit_bytes} bytes for {self.why}")
        found = int(value)
        if found >= self.limit_bytes:
            return None
        return (
            f"{self.topic} takes record batches up to {found} bytes ({TOPIC_LIMIT}, or the "
            f"broker's {BROKER_LIMIT} when the topic does not set it) but needs "
            f"{self.limit_bytes} for {self.why}: raise it (kafka-configs.sh "
            f"--bootstrap-server {bootstrap} --alter --entity-type topics --entity-name "
            f"{self.topic} --add-config {TOPIC_LIMIT}={self.limit_bytes}) or lower {self.setting}"
        )
