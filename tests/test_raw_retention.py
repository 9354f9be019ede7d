"""The retention of `<prefix>.raw`: the setting, the configuration both creators give the
topic (the ingest and the worker, at the default), and the worker's warning at start when
an existing topic keeps bodies for less (real broker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import ValidationError

from ingest.raw_topic import RawTopicSize, ensure_raw_topic
from ingest.settings import IngestSettings
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import TOPIC_OVERRIDE, TopicCreationError
from qikflow.raw_retention import RETENTION, raw_topic_configs, retention_shortfall, span
from qikflow.topics import Topics
from streams.budget import WorkerBudget
from streams.settings import StreamsSettings
from streams.topics import prepare_topics

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
AN_HOUR_MS = 3600 * 1000
DESCRIBE_ATTEMPTS = 25


def test_the_default_keeps_bodies_for_seven_days() -> None:
    assert KafkaSettings().raw_retention_ms == SEVEN_DAYS_MS
    assert raw_topic_configs(KafkaSettings()) == {RETENTION: str(SEVEN_DAYS_MS)}


@pytest.mark.parametrize("value", ["0", "5", str(AN_HOUR_MS - 1), "-2", "7d"])
def test_a_retention_that_would_delete_bodies_at_once_is_refused(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("QIKFLOW_RAW_RETENTION_MS", value)
    with pytest.raises(ValidationError, match="QIKFLOW_RAW_RETENTION_MS"):
        KafkaSettings()


@pytest.mark.parametrize("value", ["-1", str(AN_HOUR_MS), "2592000000"])
def test_for_ever_an_hour_or_longer_is_taken(monkeypatch: pytest.MonkeyPatch,
                                             value: str) -> None:
    monkeypatch.setenv("QIKFLOW_RAW_RETENTION_MS", value)
    assert KafkaSettings().raw_retention_ms == int(value)


def test_a_shorter_topic_is_named_with_the_command_that_fixes_it() -> None:
    kafka = KafkaSettings(bootstrap="kafka:9092")
    line = retention_shortfall("acme.raw", {RETENTION: str(AN_HOUR_MS)}, kafka)
    assert line is not None and "\n" not in line
    assert line.startswith("acme.raw keeps webhook bodies for 1 hour (retention.ms=3600000), "
                           "less than QIKFLOW_RAW_RETENTION_MS=604800000 (7 days)")
    assert "--entity-name acme.raw --add-config retention.ms=604800000" in line
    assert "kafka-configs.sh --bootstrap-server kafka:9092" in line


@pytest.mark.parametrize("kept", [str(SEVEN_DAYS_MS), str(2 * SEVEN_DAYS_MS), "-1"])
def test_as_long_longer_or_for_ever_is_enough(kept: str) -> None:
    assert retention_shortfall("acme.raw", {RETENTION: kept}, KafkaSettings()) is None


def test_keeping_for_ever_is_asked_of_a_topic_that_deletes() -> None:
    forever = KafkaSettings(raw_retention_ms=-1)
    line = retention_shortfall("acme.raw", {RETENTION: str(SEVEN_DAYS_MS)}, forever)
    assert line is not None and "(for ever)" in line
    assert retention_shortfall("acme.raw", {RETENTION: "-1"}, forever) is None


def test_a_topic_whose_retention_is_not_reported_says_so() -> None:
    line = retention_shortfall("acme.raw", {}, KafkaSettings())
    assert line is not None and "did not report retention.ms of acme.raw" in line


@pytest.mark.parametrize(("ms", "shown"), [
    (SEVEN_DAYS_MS, "7 days"), (36 * AN_HOUR_MS, "1.5 days"), (90 * 60_000, "1.5 hours"),
    (AN_HOUR_MS, "1 hour"), (1500, "1.5 seconds"), (10, "10 ms"), (-1, "for ever"),
])
def test_span(ms: int, shown: str) -> None:
    assert span(ms) == shown


DEFAULT_BUDGET = WorkerBudget.from_settings(StreamsSettings())


async def test_the_worker_creates_raw_with_the_default_retention_and_says_nothing(
        topic_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    kafka = KafkaSettings()
    with caplog.at_level(logging.WARNING, logger="qikflow.raw_retention"):
        await prepare_topics(kafka, DEFAULT_BUDGET)
    assert await _own_retention(kafka, Topics.from_settings(kafka).raw) == str(SEVEN_DAYS_MS)
    assert not caplog.records


async def test_the_ingest_creates_raw_with_the_default_retention(topic_prefix: str) -> None:
    kafka = KafkaSettings()
    raw = Topics.from_settings(kafka).raw
    with contextlib.suppress(TopicCreationError):
        # A topic created a moment ago may not be described yet; the ingest's connect loop
        # then tries again. What is checked here is what it was created with.
        await ensure_raw_topic(kafka, raw, RawTopicSize.for_settings(IngestSettings()))
    assert await _own_retention(kafka, raw) == str(SEVEN_DAYS_MS)


async def _own_retention(kafka: KafkaSettings, topic: str) -> str | None:
    """The `retention.ms` the topic sets itself (not the broker's default, which is 7 days
    too), once every broker knows the topic (it may have been created a moment ago)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        for _ in range(DESCRIBE_ATTEMPTS):
            (response,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)])
            ((code, _message, _type, _name, entries, *_),) = response.resources
            if code == 0:
                return next((value for name, value, _read_only, source, *_ in entries
                             if name == RETENTION and source == TOPIC_OVERRIDE), None)
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    raise AssertionError(f"{topic} was never described")


async def test_an_existing_shorter_raw_topic_gets_one_warning_and_is_left_alone(
        topic_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    kafka = KafkaSettings()
    raw = Topics.from_settings(kafka).raw
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(raw, 1, 1, topic_configs={
            RETENTION: str(AN_HOUR_MS)})])
    finally:
        await admin.close()
    with caplog.at_level(logging.WARNING, logger="qikflow.raw_retention"):
        await prepare_topics(kafka, DEFAULT_BUDGET)
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().startswith(f"{raw} keeps webhook bodies for 1 hour")
    assert await _own_retention(kafka, raw) == str(AN_HOUR_MS)
