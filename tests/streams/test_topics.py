"""The topics the worker creates, each sized for its largest record, and the start-up check
that refuses topics too small for what the worker writes (real broker)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ingest.raw_topic import RawTopicSize, ensure_raw_topic
from ingest.settings import IngestSettings
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import topic_configs
from qikflow.size_budget import TOPIC_LIMIT
from qikflow.topics import Topics
from streams.budget import WorkerBudget
from streams.errors import TopicPartitionsError, TopicTooSmallError
from streams.events import event_types
from streams.notices import NOTICE_TYPES
from streams.settings import StreamsSettings
from streams.topics import output_topics, prepare_topics, worker_topics
from streams.worker import EXIT_CONFIG

DEFAULT_BUDGET = WorkerBudget.from_settings(StreamsSettings())
# The broker's default limit (message.max.bytes): what a topic created without one takes.
BROKER_DEFAULT_LIMIT = 1_048_588


def test_the_worker_creates_raw_keyed_and_every_published_topic_at_the_default_size() -> None:
    kafka = KafkaSettings(topic_prefix="acme")
    specs = worker_topics(kafka, DEFAULT_BUDGET)
    topics = Topics("acme")
    assert [spec.name for spec in specs] == [topics.raw, topics.keyed, *output_topics(topics)]
    assert set(output_topics(topics)) == {
        *(f"acme.{event_type}" for event_type in event_types()),
        *(f"acme.{notice_type}" for notice_type in NOTICE_TYPES),
        "acme.unknown", "acme.dlq", "acme.contact.optout", "acme.message.state",
        "acme.contact.window",
    }
    defaults = KafkaSettings.model_fields
    for spec in specs:
        assert spec.partitions == defaults["topic_partitions"].default
        assert spec.replication_factor == defaults["topic_replication_factor"].default


def test_every_topic_takes_its_largest_record_at_the_default_body_limit() -> None:
    limits = {spec.name: int(spec.configs[TOPIC_LIMIT])
              for spec in worker_topics(KafkaSettings(topic_prefix="acme"), DEFAULT_BUDGET)}
    body = StreamsSettings().max_body_bytes
    assert body == 1_048_576
    # An event carries a text twice (content and raw): a body at the limit makes ~2 MiB.
    assert limits["acme.message.text"] >= 2 * body > BROKER_DEFAULT_LIMIT
    assert limits["acme.message.text"] == limits["acme.status.failed"]
    assert limits["acme.contact.optout"] == limits["acme.message.text"]
    assert limits["acme.streams.keyed"] >= DEFAULT_BUDGET.keyed.batch_bytes
    assert limits["acme.unknown"] > body
    # A dead letter holds the largest record with the dead-letter headers.
    assert limits["acme.dlq"] > max(v for k, v in limits.items() if k != "acme.dlq")
    assert limits["acme.raw"] == DEFAULT_BUDGET.raw_limit_bytes == DEFAULT_BUDGET.raw.batch_bytes
    assert limits["acme.raw"] > body
    # A state record is small: a producer batch is its limit.
    assert limits["acme.message.state"] == limits["acme.contact.window"] == (
        StreamsSettings().producer_max_batch_bytes) >= DEFAULT_BUDGET.state.batch_bytes


def test_the_state_topics_are_compacted_for_as_long_as_their_tables_keep_a_state() -> None:
    configs = {spec.name: spec.configs
               for spec in worker_topics(KafkaSettings(topic_prefix="acme"), DEFAULT_BUDGET)}
    assert configs["acme.message.state"]["cleanup.policy"] == "compact,delete"
    assert configs["acme.message.state"]["retention.ms"] == str(30 * 86_400_000)
    assert configs["acme.contact.window"]["retention.ms"] == str(7 * 86_400_000)
    assert "cleanup.policy" not in configs["acme.message.text"]


def test_another_prefix_names_other_topics() -> None:
    kafka = KafkaSettings(topic_prefix="acme")
    names = [spec.name for spec in worker_topics(kafka, DEFAULT_BUDGET, Topics("beta"))]
    assert names[:2] == ["beta.raw", "beta.streams.keyed"]
    assert all(name.startswith("beta.") for name in names)


def test_the_worker_creates_its_topics_with_their_limits_on_the_broker(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    kafka = KafkaSettings()
    asyncio.run(prepare_topics(kafka, DEFAULT_BUDGET))
    topics = Topics(topic_prefix)
    for need in DEFAULT_BUDGET.needs(topics):
        found = asyncio.run(topic_configs(kafka, need.topic))
        assert int(found[TOPIC_LIMIT]) == need.limit_bytes


def test_a_topic_an_operator_made_too_small_stops_the_worker_naming_sizes_and_setting(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    # An operator's own limit is theirs: the worker names it rather than changing it.
    own_limit = 500_000
    asyncio.run(create_plain(kafka_bootstrap, [topics.event("message.text"), topics.dlq],
                             {TOPIC_LIMIT: str(own_limit)}))
    with pytest.raises(TopicTooSmallError) as raised:
        asyncio.run(prepare_topics(KafkaSettings(), DEFAULT_BUDGET))
    message = str(raised.value)
    needed = DEFAULT_BUDGET.limit(DEFAULT_BUDGET.event.batch_bytes)
    assert message.startswith(f"{topics.event('message.text')} takes record batches up to "
                              f"{own_limit} bytes")
    assert f"needs {needed}" in message
    assert "QIKFLOW_MAX_BODY_BYTES" in message
    assert f"--add-config {TOPIC_LIMIT}={needed}" in message
    assert message.endswith(f"1 more topic(s) are too small: {topics.dlq}")
    assert "\n" not in message


def test_topics_left_at_the_broker_default_get_their_limit_once_with_one_warning(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    topics = Topics(topic_prefix)
    # Created before the worker, with the broker's default limit, as an older qikflow did.
    plain = [topics.event("message.text"), topics.dlq]
    asyncio.run(create_plain(kafka_bootstrap, plain))
    kafka = KafkaSettings()
    with caplog.at_level(logging.WARNING, logger="streams.topics"):
        asyncio.run(prepare_topics(kafka, DEFAULT_BUDGET))
        asyncio.run(prepare_topics(kafka, DEFAULT_BUDGET))  # a second start changes nothing
    warnings = [r.getMessage() for r in caplog.records if r.name == "streams.topics"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("2 topic(s) set no max.message.bytes of their own")
    needs = {need.topic: need.limit_bytes for need in DEFAULT_BUDGET.needs(topics)}
    for name in plain:
        found = asyncio.run(topic_configs(kafka, name))
        assert int(found[TOPIC_LIMIT]) == needs[name] > BROKER_DEFAULT_LIMIT


def test_a_smaller_body_limit_lets_the_worker_use_those_topics(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    asyncio.run(create_plain(kafka_bootstrap, [topics.event("message.text")]))
    small = WorkerBudget.from_settings(StreamsSettings(max_body_bytes=400_000))
    asyncio.run(prepare_topics(KafkaSettings(), small))


def test_a_state_topic_made_with_other_partitions_than_the_keyed_topic_stops_the_worker(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """A state topic is its table's changelog, partition for partition: one an operator made
    with 2 partitions beside a keyed topic of 3 would recover the wrong states."""
    topics = Topics(topic_prefix)
    asyncio.run(create_plain(kafka_bootstrap, [topics.message_state], partitions=2))
    with pytest.raises(TopicPartitionsError) as raised:
        asyncio.run(prepare_topics(KafkaSettings(), DEFAULT_BUDGET))
    assert str(raised.value).startswith(
        f"{topics.message_state} has 2 partition(s), {topics.keyed} 3: a state topic is its "
        "table's changelog")
    worker = subprocess.run(
        [sys.executable, "-m", "qikflow", "worker"], capture_output=True, text=True,
        timeout=120, check=False, env={**os.environ, "QIKFLOW_HOME": str(tmp_path)})
    assert worker.returncode == EXIT_CONFIG, worker.stderr
    assert "worker 0 NOT started, nothing was read: " in worker.stderr
    assert f"{topics.message_state} has 2 partition(s)" in worker.stderr


async def create_plain(bootstrap: str, names: list[str],
                       configs: dict[str, str] | None = None, partitions: int = 3) -> None:
    """Create topics as an operator or an older qikflow would; without `configs` they take
    the broker's default size."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})
                                   for name in names])
    finally:
        await admin.close()


def test_the_worker_sizes_raw_exactly_as_the_ingest_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for body, batch in [(None, None), ("400000", None), ("400000", str(2 * 1024 * 1024))]:
        for name, value in (("QIKFLOW_MAX_BODY_BYTES", body),
                            ("QIKFLOW_PRODUCER_MAX_BATCH_BYTES", batch)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        ingest = RawTopicSize.for_settings(IngestSettings()).max_message_bytes
        assert WorkerBudget.from_settings(StreamsSettings()).raw_limit_bytes == ingest


def test_a_raw_topic_the_worker_created_is_taken_by_the_ingest_as_it_is(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Under `qikflow up` the worker may create raw before the ingest starts.
    kafka = KafkaSettings()
    asyncio.run(prepare_topics(kafka, DEFAULT_BUDGET))
    size = RawTopicSize.for_settings(IngestSettings())
    with caplog.at_level(logging.WARNING, logger="ingest.raw_topic"):
        asyncio.run(ensure_raw_topic(kafka, Topics(topic_prefix).raw, size))
    assert [r.getMessage() for r in caplog.records if r.name == "ingest.raw_topic"] == []
    found = asyncio.run(topic_configs(kafka, Topics(topic_prefix).raw))
    assert int(found[TOPIC_LIMIT]) == size.max_message_bytes == DEFAULT_BUDGET.raw_limit_bytes
