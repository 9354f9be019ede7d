"""bench/streams: events/s of the Faust router against a plain aiokafka loop, same data, same run.

Usage, with Kafka running:
    QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092 .venv/bin/python -m bench.streams [--records 50000]

Both read the same `<prefix>.raw` backlog of simulated Qikchat traffic (realistic mix, with
resends). The plain loop is consume (getmany) -> parse_raw -> produce to the per-type topic,
no dedup. The router is one `qikflow worker` process doing all it does in production:
parse, re-key, dedup against the RocksDB table (with changelog), fan out, fold the message
states and contact windows (each a table with its changelog), and the opt-out agent; its
window ends with the last record any of them wrote.
The plain loop runs once before and once after the worker, and the ratio is against the
mean of the two. Each rate is raw records over the processing window: for the worker,
whose backlog (the same traffic, in a raw topic of its own) is written once it is ready,
from the first record it wrote (keyed topic) to the last per-type or state record, read
from record timestamps, so start-up, group join and table recovery are not counted. Each
row also shows the cores the process used in its window and its CPU per raw record, the
steadier figure on a shared machine; the second ratio is of those.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench._cpu import tree_cpu_s
from bench._kafka import delete_topics
from bench._report import print_table, write_results
from ingest.record import RawRecord, new_receipt_id
from qikflow.config import KafkaSettings
from qikflow.gc_tuning import tune_gc
from qikflow.kafka_admin import ensure_topics
from qikflow.simulate.generator import generate
from qikflow.topics import Topics
from streams.budget import WorkerBudget
from streams.parsers import Parsed, Undecodable, Unrecognised, parse_raw
from streams.settings import StreamsSettings
from streams.topics import event_topics, worker_topics


@dataclass(frozen=True)
class Rate:
    """Raw records a second over the processing window, the cores the process used in it,
    and its CPU per raw record: the steadier figure on a shared machine."""

    per_s: float
    cores: float
    cpu_us_per_record: float


class CpuSampler(threading.Thread):
    """Samples a process tree's CPU seconds against wall time, to read what it used in a
    window known only afterwards (from record timestamps)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.samples.append((time.time(), tree_cpu_s(self.pid)))

    def cpu_between(self, start_s: float, end_s: float) -> float:
        return self._at(end_s) - self._at(start_s)

    def _at(self, when: float) -> float:
        earlier = [cpu for at, cpu in self.samples if at <= when]
        later = [cpu for at, cpu in self.samples if at >= when]
        if not earlier or not later:
            return (earlier or later or [0.0])[-1 if earlier else 0]
        return (earlier[-1] + later[0]) / 2


PROBE_RECORDS = 20  # webhooks routed before the backlog, to know the worker is ready


async def load_raw(kafka: KafkaSettings, topics: Topics, records: int, seed: int = 7) -> int:
    webhooks, _ = generate(seed=seed, rate_per_s=1000.0, duration_s=records / 1000.0)
    producer = AIOKafkaProducer(
        **kafka.client_options(), linger_ms=10, max_batch_size=1_048_576, acks="all"
    )
    await producer.start()
    try:
        for webhook in webhooks:
            record = RawRecord(
                webhook.body, new_receipt_id(), int(time.time() * 1000), "qikchat",
                webhook.account or "",
            )
            await producer.send(topics.raw, webhook.body, headers=record.headers())
        await producer.flush()
    finally:
        await producer.stop()
    return len(webhooks)


async def plain_loop(kafka: KafkaSettings, topics: Topics, out: Topics, expected: int) -> Rate:
    """Raw records/s of consume -> parse_raw -> produce, the same work minus dedup."""
    consumer = AIOKafkaConsumer(
        topics.raw, **kafka.client_options(), group_id=f"{out.prefix}-plain",
        auto_offset_reset="earliest", enable_auto_commit=False, max_partition_fetch_bytes=4_194_304,
    )
    producer = AIOKafkaProducer(**kafka.client_options(), linger_ms=5, max_batch_size=1_048_576)
    await consumer.start()
    await producer.start()
    seen = 0
    started: float | None = None
    cpu_started = 0.0
    try:
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            if started is None and batch:
                started, cpu_started = time.perf_counter(), time.process_time()
            for records in batch.values():
                for message in records:
                    record = RawRecord.from_kafka(message.value, message.headers)
                    outcome = parse_raw(record)
                    if isinstance(outcome, Parsed):
                        for event in outcome.events:
                            topic = out.event(event.type)
                            await producer.send(topic, event.to_json(), key=event.key)
                    elif isinstance(outcome, Unrecognised):
                        await producer.send(out.unknown, message.value)
                    elif isinstance(outcome, Undecodable):
                        await producer.send(out.dlq, message.value)
                seen += len(records)
            await producer.flush()
            await consumer.commit()
        elapsed = time.perf_counter() - (started or time.perf_counter())
        cpu = time.process_time() - cpu_started
    finally:
        await consumer.stop()
        await producer.stop()
    return Rate(seen / elapsed, cpu / elapsed, cpu / seen * 1e6)


async def _last_timestamps(kafka: KafkaSettings, names: list[str],
                           since_ms: int = 0) -> tuple[int, int, int]:
    """(records, first timestamp ms, last timestamp ms) over the given topics, of the
    records written from `since_ms` on."""
    # Reset to the beginning, not the default "latest": a reset to the end racing the seek
    # below made every partition look read before a record was.
    consumer = AIOKafkaConsumer(
        **kafka.client_options(), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, p)
            for name in names
            for p in (consumer.partitions_for_topic(name) or await _partitions(consumer, name))
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        count, first, last = 0, 2**63, 0
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                for record in records:
                    if record.timestamp < since_ms:
                        continue
                    count += 1
                    first = min(first, record.timestamp)
                    last = max(last, record.timestamp)
            # By position, not by the last record's offset: a partition may end in offsets
            # that hold no record for the reader, and waiting for one never ends.
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return count, first, last
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, name: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(name) or set()


async def _caught_up(kafka: KafkaSettings, topics: Topics, expected: int) -> bool:
    """Has the worker committed all raw records (router), all it re-keyed (dedup, which
    also publishes the states), and every text the opt-out agent reads?"""
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=topics.router_group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        raw = [TopicPartition(topics.raw, p) for p in await _partitions(consumer, topics.raw)]
        if sum([await consumer.committed(tp) or 0 for tp in raw]) < expected:
            return False
    finally:
        await consumer.stop()
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=topics.streams_group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p)
                      for name in [topics.keyed, topics.event("message.text")]
                      for p in await _partitions(consumer, name)]
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            if (await consumer.committed(tp) or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()


async def _group_stable(kafka: KafkaSettings, group: str, members: int) -> bool:
    """Is consumer group `group` Stable with `members` members?"""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        for response in await admin.describe_consumer_groups([group]):
            for _error, _group, state, _ptype, _protocol, found, *_ in response.groups:
                return bool(state == "Stable" and len(found) == members)
        return False
    except KafkaError as error:
        if error.retriable:  # the group has no coordinator yet: nobody joined
            return False
        raise
    finally:
        await admin.close()


def run_worker(kafka: KafkaSettings, topics: Topics, records: int, home: Path,
               workers: int = 1) -> Rate:
    """Raw records/s of `qikflow worker` (`--workers N` processes) over a backlog of about
    `records` simulated webhooks, written once the worker is ready: both groups (router and
    streams) stable with every worker in them, and a first webhook routed through dedup.
    The router starts reading at once while Faust still joins and recovers its tables
    (5 s here), so a backlog written before would count Faust's start-up in the window,
    and a rebalance as a second process joins would fall inside it."""
    env = {
        **os.environ,
        "QIKFLOW_TOPIC_PREFIX": topics.prefix,
        "QIKFLOW_HOME": str(home),
        "QIKFLOW_STREAMS_WEB_PORT": str(17_000 + os.getpid() % 1000),
    }
    log = (home / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "qikflow", "--log-level", "WARNING", "worker",
         *(["--workers", str(workers)] if workers > 1 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 600

    def wait_until(done: Callable[[], bool], what: str) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} took over 600 s; see {log.name}")
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}; see {log.name}")
            time.sleep(0.5)

    sampler = CpuSampler(worker.pid)
    sampler.start()
    try:
        groups = (topics.router_group, topics.streams_group)
        wait_until(lambda: all(asyncio.run(_group_stable(kafka, group, workers))
                               for group in groups), "forming stable groups")
        probe = asyncio.run(load_raw(kafka, topics, PROBE_RECORDS, seed=8))
        wait_until(lambda: asyncio.run(_caught_up(kafka, topics, probe)), "routing a first one")
        since_ms = int(time.time() * 1000)
        expected = asyncio.run(load_raw(kafka, topics, records))
        wait_until(lambda: asyncio.run(_caught_up(kafka, topics, probe + expected)),
                   "catching up")
    finally:
        sampler.done.set()
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
    _, first, _ = asyncio.run(_last_timestamps(kafka, [topics.keyed], since_ms))
    routed, _, last_routed = asyncio.run(_last_timestamps(kafka, event_topics(topics), since_ms))
    states, _, last_state = asyncio.run(_last_timestamps(
        kafka, [topics.message_state, topics.contact_window], since_ms))
    print(f"worker routed {routed} events (after dedup) from {expected} raw records and "
          f"published {states} states and windows; the last event {last_routed - first} ms "
          f"and the last state {last_state - first} ms after the first keyed record")
    window_s = (max(last_routed, last_state) - first) / 1000.0
    cpu = sampler.cpu_between(first / 1000.0, first / 1000.0 + window_s)
    return Rate(expected / window_s, cpu / window_s, cpu / expected * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="raw records (approx.)")
    args = parser.parse_args()
    kafka = KafkaSettings()
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}")
    # The baseline runs before and after the worker (fresh output topics and group each
    # time) and the ratio is against their mean: the machine is shared, and the broker
    # may still be deleting an earlier run's topics when this one starts.
    plain_outs = [Topics(f"{topics.prefix}-plain{n}") for n in (1, 2)]
    # The worker reads a raw topic of its own, the same traffic written once it is ready.
    worker_prefix = Topics(f"{topics.prefix}-worker")
    budget = WorkerBudget.from_settings(StreamsSettings())
    for prefix in (topics, *plain_outs, worker_prefix):
        asyncio.run(ensure_topics(kafka, worker_topics(kafka, budget, prefix)))
    try:
        records = asyncio.run(load_raw(kafka, topics, args.records))
        print(f"{records} raw records in {topics.raw}", flush=True)
        # The worker tunes its garbage collector; the baseline gets the same, to be fair.
        tune_gc()
        plain_before = _plain(kafka, topics, plain_outs[0], records)
        with tempfile.TemporaryDirectory(prefix="qikflow-bench-") as home:
            worker = run_worker(kafka, worker_prefix, args.records, Path(home))
        plain_after = _plain(kafka, topics, plain_outs[1], records)
    finally:
        # The broker is shared: leave no topics behind.
        asyncio.run(delete_topics(kafka, (topics.prefix, worker_prefix.prefix,
                                          *(p.prefix for p in plain_outs))))
    plain = (plain_before.per_s + plain_after.per_s) / 2
    ratio = worker.per_s / plain
    plain_cpu = (plain_before.cpu_us_per_record + plain_after.cpu_us_per_record) / 2
    cpu_ratio = plain_cpu / worker.cpu_us_per_record
    print_table(
        ["pipeline", "raw records/s", "cores", "CPU µs/record"],
        [["plain aiokafka loop (no dedup), before", *_figures(plain_before)],
         ["plain aiokafka loop (no dedup), after", *_figures(plain_after)],
         ["qikflow worker (1 process, with the state and window agents)", *_figures(worker)],
         ["ratio worker / mean of plain", f"{ratio:.2f}", "", f"{cpu_ratio:.2f}"]],
    )
    write_results("streams", {
        "records": records, "plain_before_per_s": round(plain_before.per_s),
        "plain_after_per_s": round(plain_after.per_s), "worker_per_s": round(worker.per_s),
        "ratio": round(ratio, 3),
        "plain_cpu_us_per_record": round(plain_cpu, 1),
        "worker_cpu_us_per_record": round(worker.cpu_us_per_record, 1),
        "worker_cores": round(worker.cores, 2), "cpu_ratio": round(cpu_ratio, 3),
    })
    return 0


def _figures(rate: Rate) -> list[str]:
    return [f"{rate.per_s:,.0f}", f"{rate.cores:.2f}", f"{rate.cpu_us_per_record:.0f}"]


def _plain(kafka: KafkaSettings, topics: Topics, out: Topics, records: int) -> Rate:
    rate = asyncio.run(asyncio.wait_for(plain_loop(kafka, topics, out, records), 600))
    print(f"plain loop: {rate.per_s:,.0f} raw records/s, {rate.cores:.2f} cores", flush=True)
    return rate


if __name__ == "__main__":
    raise SystemExit(main())
