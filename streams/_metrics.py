"""Prometheus counters of the streams worker, served at `/metrics` on the Faust web port."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

if TYPE_CHECKING:
    import faust


class StreamsMetrics:
    """What a worker did with the events it saw; one registry per app, so tests can build many."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.raw = Counter(
            "qikflow_streams_raw_records",
            "Raw webhook records read from <prefix>.raw.",
            registry=self.registry,
        )
        self.routed = Counter(
            "qikflow_streams_routed_events",
            "Events written to their per-type topic, by type.",
            ["type"],
            registry=self.registry,
        )
        self.deduplicated = Counter(
            "qikflow_streams_deduplicated_events",
            "Events dropped because their id was seen within the dedup window.",
            registry=self.registry,
        )
        self.reread = Counter(
            "qikflow_streams_reread_keyed_records",
            "Keyed records Faust delivered again to the worker that had already handled "
            "them (a fetch before the seek to committed offsets); skipped.",
            registry=self.registry,
        )
        self.unknown = Counter(
            "qikflow_streams_unknown_records",
            "Valid JSON records that match no known event, sent to <prefix>.unknown.",
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "qikflow_streams_dead_lettered_records",
            "Records sent to <prefix>.dlq, by the agent that sent them.",
            ["agent"],
            registry=self.registry,
        )
        self.truncated = Counter(
            "qikflow_streams_truncated_dead_letters",
            "Dead letters that carry a preview of a record too large for <prefix>.dlq (the "
            "full bytes stay in <prefix>.raw), by agent.",
            ["agent"],
            registry=self.registry,
        )
        self.agent_failures = Counter(
            "qikflow_streams_agent_failures",
            "Exceptions raised while an agent handled one record, by agent.",
            ["agent"],
            registry=self.registry,
        )
        self.emitted = Counter(
            "qikflow_streams_agent_outputs",
            "Records extension agents emitted, by agent.",
            ["agent"],
            registry=self.registry,
        )
        self.state_unchanged = Counter(
            "qikflow_streams_state_unchanged",
            "Events a state fold read that changed no state (resent or late callbacks)",
            ["agent"],
            registry=self.registry,
        )
        self.state_republished = Counter(
            "qikflow_streams_state_republished",
            "States published again because the event that made them was read again "
            "(after a restart or a rebalance)",
            ["agent"],
            registry=self.registry,
        )
        self._routed_by_type: dict[str, Any] = {}

    def count_routed(self, event_type: str) -> None:
        child = self._routed_by_type.get(event_type)
        if child is None:
            child = self._routed_by_type[event_type] = self.routed.labels(type=event_type)
        child.inc()

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def expose(self, app: faust.App) -> None:
        """Serve the counters at `/metrics` on the app's web server."""

        async def metrics(view: Any, request: Any) -> Any:
            # aiohttp refuses a charset in `content_type`; the header carries it whole.
            return view.bytes(self.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app.page("/metrics")(metrics)
