"""Sizing `<prefix>.raw` for what the ingest accepts, and refusing a topic that is too small.

A body at QIKFLOW_MAX_BODY_BYTES travels as one Kafka record batch: the body, the capped
record headers (record.py) and the batch's own overhead. The ingest creates the raw topic
with a `max.message.bytes` that holds that batch (or a full producer batch, whichever is
larger) and sizes its producer's requests the same way. A topic that exists and sets no
limit of its own (auto-created by a client, or created first by another qikflow process)
gets the ingest's limit set on it, with one WARNING. A topic whose own setting is too
small was sized by someone on purpose: the ingest does not start, because Kafka would
refuse every body near the limit, and says what to change on either side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from ingest.errors import RawTopicTooSmallError
from ingest.record import batch_bytes as batch_bytes  # the contract's; re-exported
from ingest.settings import IngestSettings
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import describe_topic, ensure_topics, specs_for
from qikflow.raw_retention import raw_topic_configs

logger = logging.getLogger(__name__)

TOPIC_LIMIT = "max.message.bytes"
BROKER_LIMIT = "message.max.bytes"


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
    """Create `topic` sized for `size` when missing. An existing topic that sets no limit of
    its own (auto-created, or created by another qikflow process first) and would take less
    gets the ingest's limit as its own setting. RawTopicTooSmallError when the topic's own
    setting is too small, or Kafka refuses to change it. Connection errors are aiokafka's."""
    await ensure_topics(kafka, specs_for(kafka, [topic],
                                         {TOPIC_LIMIT: str(size.max_message_bytes),
                                          **raw_topic_configs(kafka)}),
                        client_id="qikflow-ingest")
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id="qikflow-ingest")
    await admin.start()
    try:
        values, own = await describe_topic(admin, topic, bootstrap=kafka.bootstrap)
        try:
            size.check(topic, values, kafka.bootstrap)
            return
        except RawTopicTooSmallError as small:
            if TOPIC_LIMIT in own or not values.get(TOPIC_LIMIT, "").isdigit():
                raise
            await _raise_limit(admin, topic, {n: values[n] for n in own}, size, small)
    finally:
        await admin.close()
    logger.warning("%s set no %s of its own, and the broker's %s bytes cannot hold a body of "
                   "QIKFLOW_MAX_BODY_BYTES=%d with its headers: set it to %d", topic,
                   TOPIC_LIMIT, values[TOPIC_LIMIT], size.max_body_bytes,
                   size.max_message_bytes)


async def _raise_limit(admin: AIOKafkaAdminClient, topic: str, own: dict[str, str],
                       size: RawTopicSize, small: RawTopicTooSmallError) -> None:
    # AlterConfigs replaces every setting of the topic: send its own ones along.
    configs = {**own, TOPIC_LIMIT: str(size.max_message_bytes)}
    for response in await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                              topic, configs=configs)]):
        for code, message, *_ in response.resources:
            if code != 0:
                raise RawTopicTooSmallError(
                    f"{small}. (The ingest tried to set it itself and Kafka refused: "
                    f"{for_code(code).__name__} {message or ''})")
