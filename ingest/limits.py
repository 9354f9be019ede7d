"""What one ingest process allows a connection: head size, time, open connections, memory.

`ConnectionLimits` is built once per process by the app factory from `IngestSettings` and
handed to the HTTP protocol (ingest/protocol.py) through the ASGI lifespan state, the one
channel uvicorn gives both the app and its connections. `BodyMemoryBudget` bounds the body
bytes all requests hold at once.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from prometheus_client import Gauge

from ingest.metrics import IngestMetrics
from ingest.refusals import RefusalSummary
from ingest.settings import IngestSettings

# Key of the ConnectionLimits in the lifespan state (uvicorn's `app_state`).
LIMITS_STATE_KEY = "qikflow.ingest.limits"
# File descriptors kept back from connections: Kafka sockets, the spool's SQLite files,
# adopted spools, logs, metric files.
RESERVED_FDS = 64
MIN_CONNECTIONS = 16
UNLIMITED_CONNECTIONS = 1 << 20


@dataclass(frozen=True)
class ConnectionLimits:
    """The per-connection limits of one process, and where their refusals are counted."""

    max_header_bytes: int
    max_header_count: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    metrics: IngestMetrics
    summary: RefusalSummary

    @classmethod
    def from_settings(cls, settings: IngestSettings, metrics: IngestMetrics) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout_s=settings.header_timeout_ms / 1000,
            body_timeout_s=settings.body_timeout_ms / 1000,
            max_connections=(settings.max_connections or default_max_connections(
                resource.getrlimit(resource.RLIMIT_NOFILE)[0])),
            metrics=metrics,
            summary=RefusalSummary("requests or connections"),
        )

    def refuse(self, reason: str, client: str) -> None:
        """Count a connection-level refusal (metric and the periodic log summary)."""
        self.metrics.connections_refused.labels(reason).inc()
        self.summary.record(reason, client)


def default_max_connections(open_files: int) -> int:
    """`open_files` (the soft RLIMIT_NOFILE) minus RESERVED_FDS, at least MIN_CONNECTIONS."""
    if open_files == resource.RLIM_INFINITY:
        return UNLIMITED_CONNECTIONS
    return max(MIN_CONNECTIONS, open_files - RESERVED_FDS)


class BodyMemoryBudget:
    """Body bytes held by all requests of this process, against `max_body_memory_bytes`."""

    def __init__(self, max_bytes: int, metrics: IngestMetrics) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        gauge = metrics.body_memory_bytes
        self._gauge: Gauge | None = None
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Several workers: each one's value is a file that /metrics sums, so it is
            # written on every change.
            self._gauge = gauge
        else:
            # One process: read when scraped, instead of set (under a lock) twice a request.
            gauge.set_function(lambda: self.held)

    def reserve(self, size: int) -> bool:
        """Hold `size` more bytes; False (nothing held) when that would pass the limit."""
        if self.held + size > self.max_bytes:
            return False
        self.held += size
        if self._gauge is not None:
            self._gauge.set(self.held)
        return True

    def release(self, size: int) -> None:
        self.held -= size
        if self._gauge is not None:
            self._gauge.set(self.held)


class BodyHold:
    """The bytes one request holds in a BodyMemoryBudget; released once it is answered."""

    def __init__(self, budget: BodyMemoryBudget) -> None:
        self.budget = budget
        self.size = 0

    def grow_to(self, size: int) -> bool:
        """Hold `size` bytes in all; False (holding what it held) when the budget is spent."""
        if size <= self.size:
            return True
        if not self.budget.reserve(size - self.size):
            return False
        self.size = size
        return True

    def release(self) -> None:
        self.budget.release(self.size)
        self.size = 0
