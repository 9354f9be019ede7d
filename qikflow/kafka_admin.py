"""Creating the topics a qikflow process needs: one routine, one policy for every process.

A topic that exists is left as it is (another process, or an operator, created it first).
Anything else the broker answers is a `TopicCreationError` at start that names the topic
and the broker's answer, so a cluster that forbids creation (no CREATE right) or refuses a
setting says so at once instead of failing later. A broker that cannot be reached raises
aiokafka's own connection error, which each caller retries as it retries any outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from qikflow.config import KafkaSettings

logger = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic this process needs."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create when it is missing: name, size and topic-level configuration.
    A replication factor of None takes the cluster's default (`resolve_cluster_defaults`)."""

    name: str
    partitions: int
    replication_factor: int | None
    configs: Mapping[str, str] = field(default_factory=dict)


MAX_DEFAULT_REPLICAS = 3
MIN_INSYNC = "min.insync.replicas"


def replication_defaults(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of `brokers` brokers: three
    copies where there are three brokers, and acks=all waiting for two of them."""
    factor = max(1, min(brokers, MAX_DEFAULT_REPLICAS))
    return factor, 2 if factor >= MAX_DEFAULT_REPLICAS else 1


async def resolve_cluster_defaults(kafka: KafkaSettings,
                                   *, client_id: str = "qikflow-admin") -> KafkaSettings:
    """`kafka` with an unset replication factor and min.insync.replicas filled in from the
    cluster's size, as the broker reports it now."""
    if kafka.topic_replication_factor is not None and kafka.topic_min_insync_replicas:
        return kafka
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=client_id)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    factor, min_insync = replication_defaults(len(cluster.get("brokers", [])))
    if kafka.topic_replication_factor is not None:
        factor = kafka.topic_replication_factor
        min_insync = replication_defaults(factor)[1]
    return kafka.model_copy(update={
        "topic_replication_factor": factor,
        "topic_min_insync_replicas": kafka.topic_min_insync_replicas or min_insync,
    })


def specs_for(kafka: KafkaSettings, names: Sequence[str],
              configs: Mapping[str, str] | None = None) -> list[TopicSpec]:
    """Specs for `names`, sized by QIKFLOW_TOPIC_PARTITIONS and ..._REPLICATION_FACTOR."""
    return [
        TopicSpec(name, kafka.topic_partitions, kafka.topic_replication_factor,
                  dict(configs or {}))
        for name in names
    ]


async def ensure_topics(kafka: KafkaSettings, specs: Sequence[TopicSpec],
                        *, client_id: str = "qikflow-admin") -> list[str]:
    """Create the topics of `specs` that are missing; return the names created now."""
    if not specs:
        return []
    kafka = await resolve_cluster_defaults(kafka, client_id=client_id)
    factor, min_insync = kafka.topic_replication_factor, kafka.topic_min_insync_replicas
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=client_id)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        await _warn_if_weaker(admin, kafka, [s.name for s in specs if s.name in existing])
        if not missing:
            return []
        response = await admin.create_topics([
            NewTopic(spec.name, spec.partitions, spec.replication_factor or factor,
                     topic_configs={MIN_INSYNC: str(min_insync), **spec.configs})
            for spec in missing
        ])
        created: list[str] = []
        refused: list[str] = []
        for name, code, *rest in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:  # another process created it first: fine
                message = rest[0] if rest and rest[0] else ""
                refused.append(f"{name}: {for_code(code).__name__} {message}".rstrip())
        await _await_described(admin, created)
    finally:
        await admin.close()
    if refused:
        raise TopicCreationError(
            f"Kafka at {kafka.bootstrap} refused to create "
            f"{'; '.join(refused)}. Create the topic(s) yourself, or give this client the "
            "CREATE right (QIKFLOW_TOPIC_PARTITIONS / QIKFLOW_TOPIC_REPLICATION_FACTOR size them)"
        )
    if created:
        first = missing[0]
        logger.info("created %d topic(s) with %d partitions, replication %d, "
                    "min.insync.replicas %s: %s", len(created), first.partitions,
                    first.replication_factor or factor, min_insync, ", ".join(created))
    return created


async def _await_described(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until the broker describes each topic just created (`describe_topic` waits)."""
    for name in names:
        await describe_topic(admin, name)


async def _warn_if_weaker(admin: AIOKafkaAdminClient, kafka: KafkaSettings,
                          names: list[str]) -> None:
    """One WARNING naming the existing topics with fewer replicas than the setting asks."""
    if not names or not kafka.topic_replication_factor:
        return
    described = await admin.describe_topics(names)
    weaker = sorted(
        f"{topic['topic']} ({min(len(p['replicas']) for p in topic['partitions'])})"
        for topic in described
        if topic.get("partitions")
        and min(len(p["replicas"]) for p in topic["partitions"]) < kafka.topic_replication_factor
    )
    if weaker:
        logger.warning(
            "%d existing topic(s) have fewer replicas than the %d asked for "
            "(QIKFLOW_TOPIC_REPLICATION_FACTOR or the cluster size): %s; qikflow leaves them "
            "as they are: raise them with kafka-reassign-partitions", len(weaker),
            kafka.topic_replication_factor, ", ".join(weaker))


async def topic_configs(kafka: KafkaSettings, name: str,
                        *, client_id: str = "qikflow-admin") -> dict[str, str]:
    """The effective configuration of topic `name` (its own overrides and the broker's
    defaults), as the broker reports it; raises TopicCreationError if the broker refuses."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=client_id)
    await admin.start()
    try:
        values, _own = await describe_topic(admin, name, bootstrap=kafka.bootstrap)
    finally:
        await admin.close()
    return values


TOPIC_LIMIT = "max.message.bytes"
TOPIC_OVERRIDE = 1  # DescribeConfigs config source DYNAMIC_TOPIC_CONFIG: set on the topic


async def raise_default_limits(kafka: KafkaSettings, limits: Mapping[str, int],
                               *, client_id: str = "qikflow-admin") -> list[str]:
    """Give each topic of `limits` that sets no `max.message.bytes` of its own, and whose
    broker default takes less, the limit it needs; return the names changed.

    Such a topic was auto-created by a client or made by an older qikflow: it is qikflow's
    to size. A topic with a setting of its own is an operator's choice and is left alone
    (the caller's check then names it). Kafka refusing the change raises TopicCreationError.
    """
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=client_id)
    await admin.start()
    raised: list[str] = []
    try:
        for topic, limit in limits.items():
            values, own = await describe_topic(admin, topic, bootstrap=kafka.bootstrap)
            current = values.get(TOPIC_LIMIT, "")
            if TOPIC_LIMIT in own or not current.isdigit() or int(current) >= limit:
                continue
            # AlterConfigs replaces every setting of the topic: send its own ones along.
            configs = {**{name: values[name] for name in own}, TOPIC_LIMIT: str(limit)}
            for response in await admin.alter_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)]):
                for code, message, *_ in response.resources:
                    if code != 0:
                        raise TopicCreationError(
                            f"Kafka at {kafka.bootstrap} refused to set {TOPIC_LIMIT}={limit} "
                            f"on {topic}: {for_code(code).__name__} {message or ''}".rstrip())
            await _await_limit(admin, topic, limit)
            raised.append(topic)
    finally:
        await admin.close()
    return raised


async def _await_limit(admin: AIOKafkaAdminClient, topic: str, limit: int) -> None:
    """Wait (a few seconds at most) until the broker describes `topic` with `limit`: a change
    takes a moment to reach the metadata every broker answers from, and a check made right
    after it could otherwise still see the old size."""
    for _ in range(50):
        values, _own = await describe_topic(admin, topic)
        if values.get(TOPIC_LIMIT, "").isdigit() and int(values[TOPIC_LIMIT]) >= limit:
            return
        await asyncio.sleep(0.1)


UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION
DESCRIBE_WAIT_S = 10.0


async def describe_topic(admin: AIOKafkaAdminClient, topic: str, *, bootstrap: str | None = None,
                         wait_s: float = DESCRIBE_WAIT_S) -> tuple[dict[str, str], set[str]]:
    """The topic's effective configuration, and the names it sets itself (not inherited
    from the broker); TopicCreationError when Kafka will not describe it.

    A topic created a moment ago, by this process or another, is unknown to a broker until
    the new metadata reaches it: an unknown topic is asked for again for up to `wait_s`.
    """
    deadline = time.monotonic() + wait_s
    delay_s = 0.05
    while True:
        code, message, values, own = await _describe_once(admin, topic)
        if code == 0:
            return values, own
        if code != UNKNOWN_TOPIC or time.monotonic() >= deadline:
            broker = f"Kafka at {bootstrap}" if bootstrap else "Kafka"
            raise TopicCreationError(f"{broker} will not describe {topic}: "
                                     f"{for_code(code).__name__} {message or ''}".rstrip())
        await asyncio.sleep(delay_s)
        delay_s = min(2 * delay_s, 0.5)


async def _describe_once(admin: AIOKafkaAdminClient,
                         topic: str) -> tuple[int, str, dict[str, str], set[str]]:
    values: dict[str, str] = {}
    own: set[str] = set()
    for response in await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]):
        for code, message, _type, _name, entries, *_ in response.resources:
            if code != 0:
                return code, message or "", {}, set()
            for name, value, _read_only, source, *_ in entries:
                values[name] = value
                if source == TOPIC_OVERRIDE:
                    own.add(name)
    return 0, "", values, own
