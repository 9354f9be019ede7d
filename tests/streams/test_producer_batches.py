"""streams/_producer_batches.py against the real broker: records queued per partition
arrive in order, where `send()` would put them; every delivery waiting on a batch is
settled once per batch, with the broker's error when it refuses the batch; the changelog
hears the offset of each batch's last record."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from streams._producer_batches import ProducerBatches
from tests.fixtures.kafka import consume, delete_topics

PARTITIONS = 3


class Waiting:
    """What a delivery does with a batch: counts what it expects and how it settled."""

    def __init__(self) -> None:
        self.expected = 0
        self.errors: list[BaseException | None] = []

    def expect(self) -> None:
        self.expected += 1

    def settle(self, error: BaseException | None) -> None:
        self.errors.append(error)


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    name = f"{prefix}.batches"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1,
                                            topic_configs={"max.message.bytes": "65536"})])
    finally:
        await admin.close()
    yield name
    await delete_topics(kafka_bootstrap, prefix)


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    # Batches of 16 KiB: the records below fill several per partition.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                                max_batch_size=16_384, linger_ms=5)
    await producer.start()
    yield producer
    await producer.stop()


async def _settled(waiting: list[Waiting], producer: AIOKafkaProducer) -> None:
    await producer.flush()
    for _ in range(200):
        if all(len(one.errors) == one.expected for one in waiting):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries not settled")


async def test_records_arrive_in_queue_order_where_send_puts_them(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer,
) -> None:
    batches = ProducerBatches()
    delivered: dict[int, int] = {}
    batches_sent = 0

    def note(name: str, partition: int, offset: int) -> None:
        nonlocal batches_sent
        assert name == topic
        batches_sent += 1
        delivered[partition] = max(offset, delivered.get(partition, -1))

    waiting = [Waiting() for _ in range(300)]
    for n, one in enumerate(waiting):
        key = f"contact-{n % 17}".encode()
        partition = await batches.partition(producer, topic, key)
        await batches.queue(producer, one, topic, partition, key, b"%d:" % n + b"x" * 400,
                            [("n", str(n).encode())], note)
    await batches.send_all(producer)
    await _settled(waiting, producer)
    assert all(one.errors == [None] and one.expected == 1 for one in waiting)
    assert batches_sent > PARTITIONS  # full batches were sent as the queue filled them

    # One key the plain `send()` writes: the same partition as the batches chose.
    control = await (await producer.send(topic, b"control", key=b"contact-3"))
    records = await consume(kafka_bootstrap, [topic], expected=301)
    by_partition: dict[int, list[int]] = {}
    for record in records:
        if record.value == b"control":
            continue
        n = int(record.value.split(b":")[0])
        by_partition.setdefault(record.partition, []).append(n)
        assert record.headers == (("n", str(n).encode()),)
    assert 3 in {n % 17 for n in by_partition[control.partition]}
    assert sum(map(len, by_partition.values())) == 300
    for partition, numbers in by_partition.items():
        assert numbers == sorted(numbers), partition  # queue order, per partition
    # The changelog heard the offset of each partition's last record (the control came after).
    assert delivered == {partition: len(numbers) - 1
                         for partition, numbers in by_partition.items()}


async def test_a_batch_the_broker_refuses_settles_every_delivery_in_it_with_the_error(
    topic: str, producer: AIOKafkaProducer,
) -> None:
    """The topic takes batches of 64 KiB at most; one record of 100 KB makes its batch
    (it alone) refused, and only its deliveries hear of it."""
    batches = ProducerBatches()
    small, large = Waiting(), Waiting()
    await batches.queue(producer, small, topic, 0, b"k", b"fits", [])
    await batches.queue(producer, large, topic, 1, b"k", b"x" * 100_000, [])
    await batches.send_all(producer)
    await _settled([small, large], producer)
    assert small.errors == [None]
    assert len(large.errors) == 1 and isinstance(large.errors[0], KafkaError)


async def test_what_is_queued_for_a_partition_goes_before_a_record_sent_alone(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer,
) -> None:
    batches = ProducerBatches()
    one = Waiting()
    await batches.queue(producer, one, topic, 2, b"k", b"first", [])
    assert batches.holds(topic, 2) and not batches.holds(topic, 1)
    await batches.send((topic, 2), producer)  # what Output.send does before sending alone
    await producer.send(topic, b"second", key=b"k", partition=2)
    await _settled([one], producer)
    records = await consume(kafka_bootstrap, [topic], expected=2)
    assert [record.value for record in records] == [b"first", b"second"]
