"""The topics the worker reads and writes (their names come from `qikflow.topics`), sized
for the records it writes (`budget.py`), and the check that existing ones are big enough."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import (
    TopicSpec,
    ensure_topics,
    raise_default_limits,
    specs_for,
    topic_configs,
)
from qikflow.raw_retention import raw_topic_configs, warn_if_short
from qikflow.size_budget import TOPIC_LIMIT, TopicNeed
from qikflow.topics import Topics
from streams.budget import WorkerBudget
from streams.errors import TopicPartitionsError, TopicTooSmallError
from streams.events import event_types
from streams.notices import NOTICE_TYPES
from streams.settings import StreamsSettings

logger = logging.getLogger(__name__)

CLIENT_ID = "qikflow-streams"


def event_topics(topics: Topics) -> list[str]:
    """Every per-type topic (`<prefix>.message.*` and `<prefix>.status.*`), then the topic
    of every notice type (`<prefix>.template.status`, ...: `streams/notices.py`)."""
    return topics.events([*event_types(), *NOTICE_TYPES])


def output_topics(topics: Topics) -> list[str]:
    """Every published topic the worker writes."""
    return [*event_topics(topics), topics.unknown, topics.dlq, topics.optout,
            topics.message_state, topics.contact_window]


def state_topic_configs(topics: Topics, settings: StreamsSettings) -> dict[str, dict[str, str]]:
    """The compacted state topics: the latest record of each key is kept, for as long as
    the agent's table keeps its state."""
    return {
        topics.message_state: {"cleanup.policy": "compact,delete",
                               "retention.ms": str(settings.state_retention_s * 1000)},
        topics.contact_window: {"cleanup.policy": "compact,delete",
                                "retention.ms": str(settings.window_retention_s * 1000)},
    }


def worker_topics(kafka: KafkaSettings, budget: WorkerBudget,
                  topics: Topics | None = None,
                  settings: StreamsSettings | None = None) -> list[TopicSpec]:
    """Every topic the worker reads or writes (for `kafka`'s prefix, or `topics`), to create
    when missing, each with the `max.message.bytes` its largest record needs."""
    topics = topics or Topics.from_settings(kafka)
    compacted = state_topic_configs(topics, settings or StreamsSettings())
    raw = specs_for(kafka, [topics.raw], {TOPIC_LIMIT: str(budget.raw_limit_bytes),
                                          **raw_topic_configs(kafka)})
    return [*raw, *(spec for need in budget.needs(topics) for spec in specs_for(
        kafka, [need.topic], {TOPIC_LIMIT: str(need.limit_bytes),
                              **compacted.get(need.topic, {})}))]


async def prepare_topics(kafka: KafkaSettings, budget: WorkerBudget,
                         topics: Topics | None = None,
                         settings: StreamsSettings | None = None) -> None:
    """Create the worker's missing topics, then check that every topic it writes takes its
    largest record; raise TopicTooSmallError, naming each one that does not, if any. A
    raw topic that keeps bodies for less than QIKFLOW_RAW_RETENTION_MS gets a WARNING."""
    topics = topics or Topics.from_settings(kafka)
    await ensure_topics(kafka, worker_topics(kafka, budget, topics, settings),
                        client_id=CLIENT_ID)
    warn_if_short(topics.raw, await _configs(kafka, topics.raw), kafka)
    needs = budget.needs(topics)
    # Topics an older qikflow (or a client's auto-creation) made with the broker's default
    # size are qikflow's to size: give them what they need, once, with one line.
    raised = await raise_default_limits(
        kafka, {need.topic: need.limit_bytes for need in needs}, client_id=CLIENT_ID)
    if raised:
        logger.warning("%d topic(s) set no max.message.bytes of their own and took less than "
                       "the worker writes; each now has its limit: %s", len(raised),
                       ", ".join(raised))
    await check_topics(kafka, needs)
    await check_state_partitions(kafka, topics)


async def check_topics(kafka: KafkaSettings, needs: list[TopicNeed]) -> None:
    """Raise TopicTooSmallError when a topic, as the broker describes it, is smaller than
    its need; the message names the first such topic in full and the others by name."""
    described = await asyncio.gather(*(_configs(kafka, need.topic) for need in needs))
    problems = [(need.topic, problem) for need, configs in zip(needs, described, strict=True)
                if (problem := need.problem(configs, kafka.bootstrap)) is not None]
    if not problems:
        return
    (_, first), *others = problems
    more = (f"; {len(others)} more topic(s) are too small: "
            f"{', '.join(name for name, _ in others)}") if others else ""
    raise TopicTooSmallError(f"{first}{more}")


async def check_state_partitions(kafka: KafkaSettings, topics: Topics) -> None:
    """Raise TopicPartitionsError unless each state topic has as many partitions as the
    keyed topic: it is its table's changelog, partition for partition (`_state_table.py`)."""
    names = [topics.keyed, topics.message_state, topics.contact_window]
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=CLIENT_ID)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    counts = {topic["topic"]: len(topic.get("partitions") or []) for topic in described}
    keyed = counts.get(topics.keyed, 0)
    wrong = [f"{name} has {counts.get(name, 0)}" for name in names[1:]
             if counts.get(name, 0) != keyed]
    if wrong:
        raise TopicPartitionsError(
            f"{' and '.join(wrong)} partition(s), {topics.keyed} {keyed}: a state topic is "
            "its table's changelog, partition for partition, and must have as many. Delete "
            f"it and let the worker create it, or create it with {keyed} partitions "
            "(kafka-topics.sh --create --partitions "
            f"{keyed} --config cleanup.policy=compact,delete)")


async def _configs(kafka: KafkaSettings, topic: str) -> dict[str, str]:
    return await topic_configs(kafka, topic, client_id=CLIENT_ID)
