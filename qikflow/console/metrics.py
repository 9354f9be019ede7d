"""Prometheus metrics of the console itself: what can go wrong in it, at `/metrics`."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest


class ConsoleMetrics:
    """One registry per app, so tests can build many."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.scrape_failures = Counter(
            "qikflow_console_scrape_failures_total",
            "Reads of a process's /metrics that failed (the process is shown as down).",
            ["target"], registry=registry,
        )
        self.kafka_failures = Counter(
            "qikflow_console_kafka_failures_total",
            "Overview samples for which Kafka did not answer.", registry=registry,
        )
        self.auth_failures = Counter(
            "qikflow_console_auth_failures_total",
            "Requests refused with 401, by reason (missing, malformed, wrong).",
            ["reason"], registry=registry,
        )
        self.csrf_refusals = Counter(
            "qikflow_console_csrf_refusals_total",
            "POSTs refused because their CSRF token was missing or wrong.", registry=registry,
        )
        self.actions = Counter(
            "qikflow_console_actions_total",
            "Re-drives started from the console, by source and outcome (done, stopped, "
            "failed, dry-run).",
            ["source", "outcome"], registry=registry,
        )
        self.redriven = Counter(
            "qikflow_console_redriven_records_total",
            "Records the console's re-drives sent, by source.", ["source"], registry=registry,
        )
        self.errors = Counter(
            "qikflow_console_page_errors_total",
            "Pages answered with an error because Kafka or PostgreSQL failed, by store.",
            ["store"], registry=registry,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
