"""bench/scaling: the ingest and the worker with one and with two processes, on a local
three-node Kafka cluster (replication 3, min.insync.replicas 2), in one run.

(1) The ingest (`ingest.server.serve` with 1, then 2 uvicorn workers) under wrk, 64
connections, as bench/ingest loads it; (2) `qikflow worker` with 1, then `--workers 2`,
over the same backlog of simulated raw webhooks, as bench/streams measures it. Prints
req/s and raw records/s per process count, the ratios 2/1, and the per-process figures
`docs/deploy.md`'s sizing table is derived from.

Usage: `make bench` runs it with the others; alone:
    .venv/bin/python -m bench.scaling [--records 30000] [--duration 10]
It starts its own cluster (ports 29600-29605, data under .qikflow/kafka/bench-cluster) and
wipes it at the end. On this 2-core machine the three brokers share the cores with the
processes measured, so 2/1 shows what a second process gains when cores are scarce, not
what it gains on a machine of its own: the sizing table says which is which.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._kafka import delete_topics
from bench._report import print_table, write_results
from bench.ingest import ENDPOINTS, measure, wrk_setup
from bench.streams import run_worker
from qikflow.config import KafkaSettings
from qikflow.gc_tuning import tune_gc
from qikflow.kafka_admin import ensure_topics
from qikflow.local.kafka_cluster import LocalKafkaCluster
from qikflow.topics import Topics
from streams.budget import WorkerBudget
from streams.settings import StreamsSettings
from streams.topics import worker_topics

CLUSTER_PORT = 29600


def ingest_rates(kafka: KafkaSettings, args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    """The ingest with 1 and 2 worker processes: bench/ingest's figures for each."""
    prefix = f"scale{uuid.uuid4().hex[:8]}"
    figures: dict[int, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            script, env = wrk_setup(Path(scratch), prefix)
            env["QIKFLOW_KAFKA_BOOTSTRAP"] = kafka.bootstrap
            for workers in (1, 2):
                options = argparse.Namespace(connections=args.connections, threads=1,
                                             duration=args.duration, workers=workers)
                figures[workers] = measure(ENDPOINTS["(b) ingest -> Kafka"][0], options, script,
                                           env)
    finally:
        asyncio.run(delete_topics(kafka, (prefix,)))
    return figures


def worker_rates(kafka: KafkaSettings, records: int) -> dict[int, float]:
    """Raw records/s of `qikflow worker` with 1 and 2 processes, each over a backlog of its
    own (fresh prefix, same simulated traffic) written once the workers are ready (`run_worker`)."""
    rates: dict[int, float] = {}
    budget = WorkerBudget.from_settings(StreamsSettings())
    tune_gc()
    for workers in (1, 2):
        topics = Topics(f"scale{uuid.uuid4().hex[:8]}")
        asyncio.run(ensure_topics(kafka, worker_topics(kafka, budget, topics)))
        try:
            with tempfile.TemporaryDirectory(prefix="qikflow-bench-") as home:
                rates[workers] = run_worker(kafka, topics, records, Path(home),
                                            workers=workers).per_s
        finally:
            asyncio.run(delete_topics(kafka, (topics.prefix,)))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=30_000, help="raw records per run")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk load")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    cluster = LocalKafkaCluster(home=Path(".qikflow"), name="bench-cluster", port=CLUSTER_PORT,
                                size=3)
    cluster.wipe()
    started = time.monotonic()
    cluster.start()
    print(f"three-node cluster ready on {cluster.bootstrap} in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    # The workers this bench starts read the bootstrap from the environment.
    os.environ["QIKFLOW_KAFKA_BOOTSTRAP"] = cluster.bootstrap
    kafka = KafkaSettings(bootstrap=cluster.bootstrap)
    try:
        ingest = ingest_rates(kafka, args)
        workers = worker_rates(kafka, args.records)
    finally:
        cluster.wipe()
    print_table(
        ["stage", "1 process", "2 processes", "2 / 1", "per process (1)"],
        [["ingest req/s (wrk, 64 connections, acks=all, RF 3)",
          f"{ingest[1]['rps']:,.0f}", f"{ingest[2]['rps']:,.0f}",
          f"{ingest[2]['rps'] / ingest[1]['rps']:.2f}",
          f"{ingest[1]['server_us_per_request']:.0f} us CPU/request"],
         ["worker raw records/s (dedup, states, opt-outs)", f"{workers[1]:,.0f}",
          f"{workers[2]:,.0f}", f"{workers[2] / workers[1]:.2f}", ""]],
    )
    for count, figures in ingest.items():
        print(f"ingest x{count}: p99 {figures['p99_ms']:.1f} ms, failed {figures['failed']}, "
              f"server {figures['server_cores']:.2f} cores, wrk {figures['wrk_cores']:.2f} "
              f"cores, machine busy {figures['machine_busy']:.0%}")
    write_results("scaling", {"ingest": {str(n): f for n, f in ingest.items()},
                              "worker_raw_records_per_s": {str(n): r for n, r in workers.items()},
                              "ingest_ratio": ingest[2]["rps"] / ingest[1]["rps"],
                              "worker_ratio": workers[2] / workers[1],
                              "records": args.records, "duration_s": args.duration})


if __name__ == "__main__":
    main()
