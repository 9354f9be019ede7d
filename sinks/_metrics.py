"""Prometheus counters of a sink process; `qikflow sink ... --metrics-port` serves them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class SinkMetrics:
    """What one sink did with its records; one registry per driver, so tests can build many."""

    def __init__(self, sink: str) -> None:
        self.registry = CollectorRegistry()
        self.written = Counter(
            "qikflow_sink_written_records", "Records written to the store.", ["sink"],
            registry=self.registry,
        ).labels(sink)
        self.retries = Counter(
            "qikflow_sink_write_retries",
            "Writes retried after a retriable failure (the store was down).", ["sink"],
            registry=self.registry,
        ).labels(sink)
        self.dead_lettered = Counter(
            "qikflow_sink_dead_lettered_records",
            "Records sent to <prefix>.sink.dlq, by reason (decode or write).",
            ["sink", "reason"], registry=self.registry,
        )
        self.commit_failures = Counter(
            "qikflow_sink_commit_failures",
            "Offset commits refused after a rebalance (the records are read and written again).",
            ["sink"], registry=self.registry,
        ).labels(sink)
        self.batch_seconds = Histogram(
            "qikflow_sink_batch_seconds", "Time to write one batch, retries included.", ["sink"],
            registry=self.registry,
        ).labels(sink)
        self.sink = sink

    def dead_letter(self, reason: str) -> None:
        self.dead_lettered.labels(self.sink, reason).inc()
