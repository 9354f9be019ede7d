"""Replay a sink: move its consumer group back to the offsets of a moment, while it is stopped.

The sink reads again from there when it starts; its writes are idempotent upserts (the
lake keeps one row per event id on read), so a replay converges to the same rows. The
offsets come from Kafka's offsets-for-times on every topic the sink reads. A partition
only ever moves back: one the group has not read up to the moment yet, or never read,
keeps its offset, so a replay never skips a record.

While the sink runs (its group has members) the replay refuses; the broker refuses too if
a sink joins between the check and the commit, since it takes a group-less commit only
for an empty group.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from qikflow.operations import _kafka
from qikflow.operations.errors import BadInputError, SinkRunningError
from qikflow.operations.pipeline import Pipeline
from qikflow.operations.times import format_ms
from sinks._topics import input_topics
from sinks.runner import SINKS

logger = logging.getLogger(__name__)

# Group states in which no consumer holds the group (DescribeGroups).
IDLE_STATES = ("Empty", "Dead", "")


@dataclass(frozen=True, slots=True)
class PartitionMove:
    """One partition of a replay: where the group is, and where it goes."""

    topic: str
    partition: int
    committed: int | None  # None: the group never committed here
    target: int

    @property
    def records(self) -> int:
        """Records the sink reads again here (0 where the partition stays)."""
        return max(0, (self.committed or 0) - self.target) if self.committed is not None else 0


@dataclass
class ReplayPlan:
    sink: str
    group: str
    since_ms: int
    dry_run: bool
    moves: list[PartitionMove] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(move.records for move in self.moves)

    def lines(self) -> list[str]:
        verb = "would move" if self.dry_run else "moved"
        moving = [move for move in self.moves if move.records]
        out = [f"replay of the {self.sink} sink from {format_ms(self.since_ms)}: {verb} group "
               f"{self.group} back on {len(moving)} partition(s), {self.records} records to "
               "read again"]
        out += [f"  {m.topic}[{m.partition}]: {m.committed} -> {m.target} ({m.records} records)"
                for m in moving]
        if not self.dry_run and moving:
            out.append(f"start the {self.sink} sink to read them; its writes are idempotent")
        return out


def check_sink(sink: str) -> str:
    if sink not in SINKS:
        raise BadInputError(f"unknown sink {sink!r}: choose one of {', '.join(SINKS)}")
    return sink


async def replay(pipeline: Pipeline, sink: str, since: datetime, *,
                 dry_run: bool = False) -> ReplayPlan:
    """Move the group of `sink` back to `since` (or, with `dry_run`, say what would move)."""
    group = pipeline.topics.sink_group(check_sink(sink))
    since_ms = int(since.timestamp() * 1000)
    plan = ReplayPlan(sink, group, since_ms, dry_run)
    kept = f"group {group} was not moved"
    async with _kafka.admin(pipeline.kafka, kept=kept) as admin:
        await _refuse_if_running(admin, sink, group)
        committed = {tp: meta.offset
                     for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    async with _kafka.reader(pipeline.kafka, kept=kept) as consumer:
        tps = await _kafka.partitions(consumer, *input_topics(pipeline.kafka))
        targets = await _kafka.offsets_at(consumer, tps, since_ms)
    for tp in tps:
        done = committed.get(tp)
        done = done if done is not None and done >= 0 else None
        plan.moves.append(PartitionMove(tp.topic, tp.partition, done, targets[tp]))
    moving = {TopicPartition(m.topic, m.partition): m.target for m in plan.moves if m.records}
    if dry_run or not moving:
        return plan
    await _commit(pipeline, sink, group, moving)
    logger.info("replay: moved group %s back to %s on %d partitions (%d records to read again)",
                group, format_ms(since_ms), len(moving), plan.records)
    return plan


async def _refuse_if_running(admin: AIOKafkaAdminClient, sink: str, group: str) -> None:
    responses = await admin.describe_consumer_groups([group])
    for response in responses:
        for described in response.groups:
            state, members = described[2], described[5]
            if members or state not in IDLE_STATES:
                who = ", ".join(f"{m[1]} on {m[2]}" for m in members) or state
                raise SinkRunningError(
                    f"the {sink} sink is running: group {group} has {len(members)} member(s) "
                    f"({who}); stop it, then replay; nothing was moved")


async def _commit(pipeline: Pipeline, sink: str, group: str,
                  offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(**pipeline.kafka.client_options(), group_id=group,
                                enable_auto_commit=False, client_id=_kafka.CLIENT_ID)
    try:
        await consumer.start()
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    except KafkaError as error:
        failure: KafkaError = error
    else:
        return
    finally:
        await consumer.stop()
    # Refused: a sink that joined meanwhile says so; anything else is Kafka's failure.
    kept = f"group {group} was not moved (Kafka refused the commit: {failure!r})"
    async with _kafka.admin(pipeline.kafka, kept=kept) as admin:
        await _refuse_if_running(admin, sink, group)
    raise _kafka.unavailable(pipeline.kafka, failure, kept)
