"""bench/e2e: sustained simulated Qikchat load through the whole local pipeline.

Runs the ingest, the router worker and both sinks as processes (as `qikflow up` does), sends
the simulator's realistic traffic at a fixed rate (with aiohttp: bench/_sender.py says why
not the simulator's httpx sender), and prints: acked webhooks/s, p99 ack latency,
end-to-end latency from ingest receipt to the row in PostgreSQL (p50/p99) and its two hops
(receipt to the per-type record the worker wrote, that record to the row), the consumer
lag of every stage when sending ends and once the pipeline drained, and the CPU each
process used while sending: the sender (this process) next to the ingest, the worker, the
sinks and the rest of the machine, so one can see which saturates first. Writes
bench/results/e2e.json and bench/results/e2e.png (throughput and latency over time).

    make bench      # or, with Kafka and PostgreSQL running:
    .venv/bin/python -m bench.e2e --rate 200 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench._cpu import CpuMeter, CpuUse
from bench._kafka import delete_topics
from bench._report import RESULTS_DIR, print_table, write_results
from bench._sender import AiohttpSender
from qikflow.config import KafkaSettings
from qikflow.local._process import wait_http_ok
from qikflow.local._status import take_snapshot
from qikflow.local.databases import create_database, drop_database
from qikflow.local.up import UpOptions, children
from qikflow.simulate.generator import DEFAULT_START, generate
from qikflow.simulate.sender import SendReport
from qikflow.supervisor import Supervisor
from qikflow.topics import Topics
from streams.headers import EVENT_ID
from streams.topics import event_topics

USER, PASSWORD = "bench", "bench-secret"


def quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def e2e_latencies(database_url: str) -> list[tuple[float, float]]:
    """(received epoch s, receipt-to-row seconds) of every inbound and status row."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT extract(epoch FROM received_at)::float8 AS at, "
            "extract(epoch FROM stored_at - received_at)::float8 AS seconds "
            "FROM inbound_messages UNION ALL "
            "SELECT extract(epoch FROM received_at)::float8, "
            "extract(epoch FROM stored_at - received_at)::float8 FROM message_status_events"
        )
    finally:
        await connection.close()
    return [(row["at"], row["seconds"]) for row in rows]


async def routed_at(kafka: KafkaSettings, topics: Topics) -> dict[str, float]:
    """Event id -> epoch seconds its per-type record was written (the first copy)."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(name, p) for name in event_topics(topics)
                      for p in consumer.partitions_for_topic(name) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[str, float] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    event_id = dict(record.headers or ()).get(EVENT_ID)
                    if event_id is not None:
                        found.setdefault(bytes(event_id).decode(), record.timestamp / 1000)
        return found
    finally:
        await consumer.stop()


async def hop_latencies(database_url: str, routed: dict[str, float]
                        ) -> list[tuple[float, float, float]]:
    """(receipt time, receipt -> per-type record, per-type record -> PostgreSQL row) in
    seconds, per row whose event was found routed."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT message_id AS event_id, extract(epoch FROM received_at)::float8 AS received, "
            "extract(epoch FROM stored_at)::float8 AS stored FROM inbound_messages UNION ALL "
            "SELECT message_id || ':' || status, extract(epoch FROM received_at)::float8, "
            "extract(epoch FROM stored_at)::float8 FROM message_status_events")
    finally:
        await connection.close()
    hops = []
    for row in rows:
        at = routed.get(row["event_id"])
        if at is not None:
            hops.append((row["received"], at - row["received"], row["stored"] - at))
    return hops


async def row_count(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        value = await connection.fetchval(
            "SELECT (SELECT count(*) FROM inbound_messages) + "
            "(SELECT count(*) FROM message_status_events)")
        return int(value or 0)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await connection.close()


def per_second(report: SendReport) -> list[dict[str, float]]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for result in report.results:
        if result.status_code == 200:
            buckets[int(result.started_s)].append(result.latency_s)
    return [{"second": s, "acked": len(v), "p99_ms": quantile(v, 0.99) * 1000}
            for s, v in sorted(buckets.items())]


def _by_second(timed: list[tuple[float, float]]) -> dict[int, list[float]]:
    """Latencies (ms) by whole second since the first of `timed` (at, seconds)."""
    start = min((at for at, _ in timed), default=0.0)
    by_second: dict[int, list[float]] = defaultdict(list)
    for at, latency in timed:
        by_second[int(at - start)].append(latency * 1000)
    return by_second


def plot(series: list[dict[str, float]], e2e: list[tuple[float, float]],
         hops: list[tuple[float, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom, hop_axes) = plt.subplots(3, 1, figsize=(9, 8.5), sharex=True)
    seconds = [p["second"] for p in series]
    top.plot(seconds, [p["acked"] for p in series], label="acked webhooks/s")
    top.set_ylabel("webhooks/s")
    top.set_ylim(0, max((p["acked"] for p in series), default=1) * 1.25)
    top.legend(loc="lower right")
    bottom.plot(seconds, [p["p99_ms"] for p in series], label="p99 ack latency (ms)")
    if e2e:
        by_second = _by_second(e2e)
        xs = sorted(by_second)
        bottom.plot(xs, [quantile(by_second[x], 0.5) for x in xs],
                    label="receipt to PostgreSQL row, p50 (ms)")
        bottom.plot(xs, [quantile(by_second[x], 0.99) for x in xs],
                    label="receipt to PostgreSQL row, p99 (ms)")
    for (name, index), color in zip((("receipt to per-type record", 1),
                                     ("per-type record to PostgreSQL row", 2)),
                                    ("tab:purple", "tab:brown"), strict=True):
        by_second = _by_second([(hop[0], hop[index]) for hop in hops])
        xs = sorted(by_second)
        hop_axes.plot(xs, [quantile(by_second[x], 0.5) for x in xs], color=color,
                      linestyle="--", label=f"{name}, p50 (ms)")
        hop_axes.plot(xs, [quantile(by_second[x], 0.99) for x in xs], color=color,
                      label=f"{name}, p99 (ms)")
    for axes in (bottom, hop_axes):
        axes.set_yscale("log")
        low, high = axes.get_ylim()
        axes.set_ylim(low, high * 8)  # room above the lines for the legend
        axes.set_ylabel("ms")
        axes.legend(loc="upper right", fontsize=8, ncol=2 if axes is hop_axes else 1)
    hop_axes.set_title("the two hops of a webhook's way to its row", fontsize=10)
    hop_axes.set_xlabel("seconds into the run")
    figure.suptitle("qikflow end to end: simulated Qikchat load")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


async def run(rate: float, duration_s: float, concurrency: int) -> dict[str, Any]:
    bootstrap = os.environ["QIKFLOW_KAFKA_BOOTSTRAP"]
    admin_url = os.environ["QIKFLOW_DATABASE_URL"]
    database_name, database_url = await create_database(admin_url, "bench")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    scratch = Path(tempfile.mkdtemp(prefix="qikflow-bench-e2e-"))
    port = 18000 + os.getpid() % 1000
    env = {
        "QIKFLOW_KAFKA_BOOTSTRAP": bootstrap, "QIKFLOW_TOPIC_PREFIX": prefix,
        "QIKFLOW_DATABASE_URL": database_url, "QIKFLOW_HOME": str(scratch / "home"),
        "QIKFLOW_LAKE_DIR": str(scratch / "lake"), "QIKFLOW_SPOOL_DIR": str(scratch / "spool"),
        "QIKFLOW_WEBHOOK_USERS": f"{USER}:{PASSWORD}",
        "QIKFLOW_STREAMS_WEB_PORT": str(port + 1),
        "QIKFLOW_LOG_LEVEL": "WARNING",
    }
    # The same processes `qikflow up` supervises.
    supervisor = Supervisor(children(UpOptions(host="127.0.0.1", port=port), env),
                            scratch / "logs")
    await supervisor.start()
    kafka = KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix)
    topics = Topics(prefix)
    groups = [topics.router_group, topics.streams_group, f"{prefix}-sink-postgres",
              f"{prefix}-sink-lake"]
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_http_ok(f"{url}/healthz")
        await asyncio.sleep(8)  # let the worker and sinks join their groups
        webhooks, truth = generate(seed=11, rate_per_s=rate, duration_s=duration_s,
                                   start=DEFAULT_START)
        meter = CpuMeter({child.spec.name: child.process.pid
                          for child in supervisor.children if child.process is not None})
        sender_started = time.process_time()
        meter.start()
        report = await AiohttpSender(url, user=USER, password=PASSWORD,
                                     concurrency=concurrency).run(list(webhooks))
        cpu = meter.stop()
        # The sender is this process (its event loop and the supervisor's watchers).
        sender_cpu_s = time.process_time() - sender_started
        lag_at_end = (await take_snapshot(kafka, groups, None, scratch / "lake")).lag
        expected_rows = len(truth.inbound_message_ids(report.acked())) + len(
            truth.status_events(report.acked()))
        drain_started = time.monotonic()
        while time.monotonic() - drain_started < 300:
            if await row_count(database_url) >= expected_rows:
                break
            await asyncio.sleep(0.5)
        drain_s = time.monotonic() - drain_started
        lag_drained = (await take_snapshot(kafka, groups, None, scratch / "lake")).lag
        e2e = await e2e_latencies(database_url)
        hops = await hop_latencies(database_url, await routed_at(kafka, topics))
    finally:
        await supervisor.stop()
        await drop_database(admin_url, database_name)
        await delete_topics(kafka, (prefix,))
    latencies = [r.latency_s for r in report.results if r.status_code == 200]
    e2e_seconds = [seconds for _, seconds in e2e]
    series = per_second(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    plot(series, e2e, hops, RESULTS_DIR / "e2e.png")
    to_routed, to_row = [hop[1] for hop in hops], [hop[2] for hop in hops]
    return {
        "rate_target": rate, "duration_s": duration_s, "concurrency": concurrency,
        "sent": len(report.results), "acked": report.ok,
        "non_200": len(report.results) - report.ok,
        "acked_per_s": report.ok / report.elapsed_s if report.elapsed_s else 0.0,
        "ack_p50_ms": quantile(latencies, 0.5) * 1000,
        "ack_p99_ms": quantile(latencies, 0.99) * 1000,
        "rows_expected": expected_rows, "rows": len(e2e),
        "e2e_p50_ms": quantile(e2e_seconds, 0.5) * 1000,
        "e2e_p99_ms": quantile(e2e_seconds, 0.99) * 1000,
        "raw_to_routed_p50_ms": quantile(to_routed, 0.5) * 1000,
        "raw_to_routed_p99_ms": quantile(to_routed, 0.99) * 1000,
        "routed_to_row_p50_ms": quantile(to_row, 0.5) * 1000,
        "routed_to_row_p99_ms": quantile(to_row, 0.99) * 1000,
        "lag_at_end_of_sending": lag_at_end, "lag_after_drain": lag_drained,
        "drain_after_sending_s": drain_s, "series": series,
        "start_lag_p99_ms": quantile([r.lag_s for r in report.results], 0.99) * 1000,
        "cpu_cores": cpu_cores(cpu, sender_cpu_s),
    }


def cpu_cores(cpu: CpuUse, sender_cpu_s: float) -> dict[str, float]:
    """Cores each process kept busy while sending, the sender first; "other" is the rest
    of the machine (Kafka, PostgreSQL, anything else running)."""
    cores = {"sender": sender_cpu_s / cpu.wall_s if cpu.wall_s else 0.0}
    cores.update({name: cpu.cores(name) for name in cpu.cpu_s})
    machine = cpu.machine_busy * (os.cpu_count() or 1)
    cores["other"] = max(0.0, machine - sum(cores.values()))
    cores["machine"] = machine
    return cores


def cpu_lines(cores: dict[str, float], start_lag_p99_ms: float) -> list[str]:
    """The CPU table's verdict: did the sender saturate before the pipeline did?"""
    processes = {name: value for name, value in cores.items()
                 if name not in ("sender", "other", "machine")}
    busiest = max(processes, key=processes.__getitem__) if processes else "none"
    lines = [f"sender CPU: {cores['sender']:.2f} of a core (one event loop: 1.00 is its "
             f"limit); busiest pipeline process: {busiest} {processes.get(busiest, 0.0):.2f}; "
             f"machine {cores['machine']:.2f} of {os.cpu_count()} cores busy; sender start "
             f"lag p99 {start_lag_p99_ms:.0f} ms"]
    if cores["sender"] >= 0.8:
        lines.append("SENDER NEAR ITS LIMIT: it may be what holds the rate back; the "
                     "pipeline's figures then understate it")
    elif cores["sender"] > processes.get(busiest, 0.0):
        lines.append("SENDER BUSIER THAN THE PIPELINE: it uses more CPU than any process "
                     "it measures, and would saturate first")
    else:
        lines.append("the sender is not what saturates first")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    for name in ("QIKFLOW_KAFKA_BOOTSTRAP", "QIKFLOW_DATABASE_URL"):
        if not os.environ.get(name):
            sys.exit(f"set {name} (make bench starts the services and sets both)")
    figures = asyncio.run(run(args.rate, args.duration, args.concurrency))
    print(f"bench/e2e: {args.rate:.0f} webhooks/s target for {args.duration:.0f}s, "
          f"concurrency {args.concurrency}")
    print_table(["figure", "value"], [
        ["webhooks sent / acked / non-200",
         f"{figures['sent']} / {figures['acked']} / {figures['non_200']}"],
        ["acked webhooks/s", f"{figures['acked_per_s']:.0f}"],
        ["ack latency p50 / p99", f"{figures['ack_p50_ms']:.1f} / {figures['ack_p99_ms']:.1f} ms"],
        ["receipt -> PostgreSQL row p50 / p99",
         f"{figures['e2e_p50_ms']:.0f} / {figures['e2e_p99_ms']:.0f} ms"],
        ["  hop: receipt -> per-type record p50 / p99",
         f"{figures['raw_to_routed_p50_ms']:.0f} / {figures['raw_to_routed_p99_ms']:.0f} ms"],
        ["  hop: per-type record -> PostgreSQL row p50 / p99",
         f"{figures['routed_to_row_p50_ms']:.0f} / {figures['routed_to_row_p99_ms']:.0f} ms"],
        ["rows in PostgreSQL / expected", f"{figures['rows']} / {figures['rows_expected']}"],
        ["consumer lag when sending ended", str(figures["lag_at_end_of_sending"])],
        ["drained after sending in", f"{figures['drain_after_sending_s']:.1f} s"],
        ["consumer lag after drain", str(figures["lag_after_drain"])],
    ])
    print("CPU while sending (cores):")
    print_table(["process", "cores"],
                [[name, f"{value:.2f}"] for name, value in figures["cpu_cores"].items()])
    for line in cpu_lines(figures["cpu_cores"], figures["start_lag_p99_ms"]):
        print(line)
    write_results("e2e", {k: v for k, v in figures.items()})
    print(f"plot written to {RESULTS_DIR / 'e2e.png'}")


if __name__ == "__main__":
    main()
