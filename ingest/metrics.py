"""Prometheus metrics of the ingest: everything that can go wrong is counted here.

With several uvicorn workers, `qikflow ingest` sets PROMETHEUS_MULTIPROC_DIR so that
`/metrics` on any worker reports the sum over all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0,
)
SIZE_BUCKETS_BYTES = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


class IngestMetrics:
    """The ingest's metrics, in a registry of their own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "qikflow_ingest_requests_total", "Webhook requests answered, by HTTP status.",
            ["status"], registry=registry,
        )
        self.ack_seconds = Histogram(
            "qikflow_ingest_ack_seconds",
            "Time from request start to a stored body (Kafka ack or spool fsync).",
            buckets=LATENCY_BUCKETS_S, registry=registry,
        )
        self.produce_seconds = Histogram(
            "qikflow_ingest_kafka_produce_seconds",
            "Kafka produce latency, send to acknowledgement (acks=all).",
            buckets=LATENCY_BUCKETS_S, registry=registry,
        )
        self.stored = Counter(
            "qikflow_ingest_bodies_stored_total",
            "Bodies stored before answering 200, by where: kafka or spool.",
            ["where"], registry=registry,
        )
        self.kafka_failures = Counter(
            "qikflow_ingest_kafka_failures_total",
            "Produce attempts that did not end in an acknowledgement, by reason.",
            ["reason"], registry=registry,
        )
        self.drained = Counter(
            "qikflow_ingest_drained_total", "Spooled bodies that reached Kafka.",
            registry=registry,
        )
        self.spool_depth = Gauge(
            "qikflow_ingest_spool_depth", "Bodies waiting in spools this process drains.",
            registry=registry, multiprocess_mode="livesum",
        )
        self.spool_bytes = Gauge(
            "qikflow_ingest_spool_bytes",
            "Bytes stored in spools this process drains (bodies, headers, row overhead).",
            registry=registry, multiprocess_mode="livesum",
        )
        self.spool_oldest_age = Gauge(
            "qikflow_ingest_spool_oldest_age_seconds",
            "Age of the oldest body waiting in a spool this process drains (0 when empty).",
            registry=registry, multiprocess_mode="livemax",
        )
        self.spool_files_set_aside = Counter(
            "qikflow_ingest_spool_files_set_aside_total",
            "Unreadable spool files renamed aside (unreadable-*), untouched.",
            registry=registry,
        )
        self.quarantined = Counter(
            "qikflow_ingest_quarantined_total",
            "Bodies Kafka refused sent alone, moved to the quarantine, by Kafka's error.",
            ["reason"], registry=registry,
        )
        self.quarantine_bodies = Gauge(
            "qikflow_ingest_quarantine_bodies",
            "Bodies in the quarantine of this spool directory (`qikflow spool status`).",
            registry=registry, multiprocess_mode="livemax",
        )
        self.producer_replacements = Counter(
            "qikflow_ingest_producer_replacements_total",
            "Kafka producers dropped and connected anew without an outage, by cause.",
            ["reason"], registry=registry,
        )
        self.kafka_available = Gauge(
            "qikflow_ingest_kafka_available",
            "1 while requests go straight to Kafka, 0 while they go to the spool.",
            registry=registry, multiprocess_mode="livemin",
        )
        self.auth_failures = Counter(
            "qikflow_ingest_auth_failures_total", "Requests refused with 401, by reason.",
            ["reason"], registry=registry,
        )
        self.rejected = Counter(
            "qikflow_ingest_rejected_total",
            "Requests refused without storing the body, by reason.",
            ["reason"], registry=registry,
        )
        self.connections_refused = Counter(
            "qikflow_ingest_connections_refused_total",
            "Connections answered 400/408/431 or closed by the HTTP protocol before the app "
            "saw a request, by reason.",
            ["reason"], registry=registry,
        )
        self.body_memory_bytes = Gauge(
            "qikflow_ingest_body_memory_bytes",
            "Body bytes requests hold in memory now (against QIKFLOW_MAX_BODY_MEMORY_BYTES).",
            registry=registry, multiprocess_mode="livesum",
        )
        self.body_bytes = Histogram(
            "qikflow_ingest_body_bytes", "Size of accepted bodies.",
            buckets=SIZE_BUCKETS_BYTES, registry=registry,
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text: this process's registry, or all workers' in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            combined = CollectorRegistry()
            MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
