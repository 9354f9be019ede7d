"""Sizing `<prefix>.raw` for what the ingest accepts, and refusing a topic that is too small.

A body at QIKFLOW_MAX_BODY_BYTES travels as one Kafka record batch: the body, the capped
record headers (record.py) and the batch's own overhead. The ingest creates the raw topic
with a `max.message.bytes` that holds that batch (or a full producer batch, whichever is
larger) and sizes its producer's requests the same way. A topic that already exists keeps
its own setting (or the broker's `message.max.bytes` when it has none); when that is too
small the ingest does not start, because Kafka would refuse every body near the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from ingest.errors import RawTopicTooSmallError
from ingest.record import largest_headers
from ingest.settings import IngestSettings
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import ensure_topics, specs_for, topic_configs

TOPIC_LIMIT = "max.message.bytes"
BROKER_LIMIT = "message.max.bytes"


def batch_bytes(body_bytes: int) -> int:
    """The largest record batch that holds one body of `body_bytes` with capped headers."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(
        None, bytes(body_bytes), largest_headers()))


@dataclass(frozen=True, slots=True)
class RawTopicSize:
    """The sizes the raw topic and the producer must allow for one ingest configuration."""

    max_body_bytes: int
    record_batch_bytes: int
    producer_batch_bytes: int

    @classmethod
    def for_settings(cls, settings: IngestSettings) -> RawTopicSize:
        return cls(settings.max_body_bytes, batch_bytes(settings.max_body_bytes),
                   settings.producer_max_batch_bytes)

    @property
    def max_message_bytes(self) -> int:
        """The topic's `max.message.bytes`: a body at the limit alone, or a full batch."""
        return max(self.record_batch_bytes, self.producer_batch_bytes)

    @property
    def max_request_bytes(self) -> int:
        """The producer's `max_request_size` (aiokafka checks each record against it)."""
        return self.record_batch_bytes

    def largest_body_within(self, limit: int) -> int:
        """The largest body whose batch fits in `limit` bytes (0 if none does)."""
        # The overhead grows by a byte or two with the body (varint lengths): start from
        # the overhead at `limit` and step to the exact answer.
        body = max(0, 2 * limit - batch_bytes(limit))
        while body > 0 and batch_bytes(body) > limit:
            body -= 1
        while batch_bytes(body + 1) <= limit:
            body += 1
        return body

    def check(self, topic: str, configs: dict[str, str], bootstrap: str) -> None:
        """Raise RawTopicTooSmallError when `topic` (as described) cannot hold a body at
        the limit or a full producer batch."""
        value = configs.get(TOPIC_LIMIT, "")
        if not value.isdigit():
            raise RawTopicTooSmallError(
                f"Kafka at {bootstrap} did not report {TOPIC_LIMIT} of {topic} "
                f"(got {value!r}); cannot tell whether it holds bodies of "
                f"QIKFLOW_MAX_BODY_BYTES={self.max_body_bytes}"
            )
        limit = int(value)
        if limit >= self.max_message_bytes:
            return
        raise RawTopicTooSmallError(
            f"{topic} on {bootstrap} takes record batches up to {limit} bytes "
            f"({TOPIC_LIMIT}, or the broker's {BROKER_LIMIT} when the topic does not set "
            f"it), but the ingest needs {self.max_message_bytes}: a body of "
            f"QIKFLOW_MAX_BODY_BYTES={self.max_body_bytes} with its headers takes "
            f"{self.record_batch_bytes}, a producer batch "
            f"(QIKFLOW_PRODUCER_MAX_BATCH_BYTES) {self.producer_batch_bytes}. Either raise "
            f"the topic's limit (kafka-configs.sh --bootstrap-server {bootstrap} --alter "
            f"--entity-type topics --entity-name {topic} --add-config "
            f"{TOPIC_LIMIT}={self.max_message_bytes}), or lower QIKFLOW_MAX_BODY_BYTES to "
            f"at most {self.largest_body_within(limit)} and "
            f"QIKFLOW_PRODUCER_MAX_BATCH_BYTES to at most {limit}"
        )


async def ensure_raw_topic(kafka: KafkaSettings, topic: str, size: RawTopicSize) -> None:
    """Create `topic` sized for `size` when missing; raise RawTopicTooSmallError when the
    existing topic cannot hold a body at the limit. Connection errors are aiokafka's."""
    await ensure_topics(kafka, specs_for(kafka, [topic],
                                         {TOPIC_LIMIT: str(size.max_message_bytes)}),
                        client_id="qikflow-ingest")
    configs = await topic_configs(kafka, topic, client_id="qikflow-ingest")
    size.check(topic, configs, kafka.bootstrap)
