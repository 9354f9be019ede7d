"""Kafka's side of the overview: records per topic, lag, members and oldest unread record
of each consumer group. The clients live as long as the console; a failure closes them,
logs one line, and the next sample connects again."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from qikflow.console.metrics import ConsoleMetrics
from qikflow.local._status import group_inputs, lag
from qikflow.operations._kafka import CLIENT_ID, record_time, unavailable
from qikflow.operations.pipeline import Pipeline

logger = logging.getLogger(__name__)

SINKS = ("postgres", "lake")
PROBE_TIMEOUT_S = 10.0
AGE_FETCH_BYTES = 16 * 1024  # only the first record of a partition is wanted
AGE_WAIT_MS = 1000
HELD = ("unknown", "dlq", "sink.dlq")


class KafkaProbe:
    def __init__(self, pipeline: Pipeline, metrics: ConsoleMetrics) -> None:
        self.kafka = pipeline.kafka
        self.topics = pipeline.topics
        self.metrics = metrics
        self.groups = self.topics.groups(SINKS)
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._failing = False

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            options = {**self.kafka.client_options(), "client_id": CLIENT_ID}
            consumer = AIOKafkaConsumer(**options, enable_auto_commit=False,
                                        max_partition_fetch_bytes=AGE_FETCH_BYTES)
            admin = AIOKafkaAdminClient(**options)
            self._consumer, self._admin = consumer, admin
            await consumer.start()
            await admin.start()
        return self._consumer, self._admin

    async def close(self) -> None:
        consumer, admin, self._consumer, self._admin = self._consumer, self._admin, None, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def sample(self, values: dict[str, float], errors: list[str]) -> None:
        try:
            await asyncio.wait_for(self._sample(values), PROBE_TIMEOUT_S)
        except (KafkaError, OSError, TimeoutError) as error:
            self.metrics.kafka_failures.inc()
            errors.append(str(unavailable(self.kafka, error,
                                          "topic, lag and group figures are missing")))
            if not self._failing:
                self._failing = True
                logger.warning("overview: Kafka at %s does not answer (%r); topic and lag "
                               "figures are missing until it does", self.kafka.bootstrap, error)
            await self.close()
            return
        if self._failing:
            self._failing = False
            logger.info("overview: Kafka at %s answers again", self.kafka.bootstrap)

    async def _sample(self, values: dict[str, float]) -> None:
        consumer, admin = await self._clients()
        prefix = self.topics.prefix + "."
        cluster = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(name, p) for name in cluster.topics() if name.startswith(prefix)
               for p in cluster.partitions_for_topic(name) or ()]
        ends = await consumer.end_offsets(tps) if tps else {}
        starts = await consumer.beginning_offsets(tps) if tps else {}
        for tp, end in ends.items():
            suffix = tp.topic.removeprefix(prefix)
            values[f"topic.{suffix}"] = values.get(f"topic.{suffix}", 0.0) + end
            if suffix in HELD:
                values[f"held.{suffix}"] = values.get(f"held.{suffix}", 0.0) + end - starts[tp]
        inputs = group_inputs(self.topics)
        for group in self.groups:
            # One group per request: aiokafka 0.14 misreads the answer for several groups
            # from Kafka 4 (the second group's fields come out shifted).
            for response in await admin.describe_consumer_groups([group]):
                for described in response.groups:
                    values[f"members.{group}"] = float(len(described[5]))
            committed = {tp: meta.offset for tp, meta in
                         (await admin.list_consumer_group_offsets(group)).items()}
            values[f"lag.{group}"] = float(lag(ends, starts, committed, inputs.get(group, set())))
            behind = {tp: committed[tp] for tp in committed
                      if tp in ends and 0 <= committed[tp] < ends[tp]}
            oldest = await self._oldest_ms(consumer, behind)
            if oldest is not None:
                values[f"age.{group}"] = max(0.0, time.time() - oldest / 1000)

    async def _oldest_ms(self, consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int]
                         ) -> int | None:
        """The timestamp of the oldest record not yet read at `positions`."""
        if not positions:
            return None
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        first: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + AGE_WAIT_MS / 1000
        while len(first) < len(positions) and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=AGE_WAIT_MS // 4)
            for tp, records in fetched.items():
                if records and tp not in first:
                    first[tp] = record_time(records[0])
                    consumer.pause(tp)
        consumer.assign([])
        times = [moment for moment in first.values() if moment > 0]
        return min(times) if times else None
