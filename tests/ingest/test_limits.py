"""Tests of ingest/limits.py: the body memory budget and the connection limits' defaults."""

from __future__ import annotations

import resource

from ingest.limits import (
    MIN_CONNECTIONS,
    RESERVED_FDS,
    UNLIMITED_CONNECTIONS,
    BodyHold,
    BodyMemoryBudget,
    ConnectionLimits,
    default_max_connections,
)
from ingest.metrics import IngestMetrics
from ingest.settings import MIB, IngestSettings

DEFAULTS = IngestSettings(allow_anonymous=True)


def gauge(metrics: IngestMetrics) -> float:
    value = metrics.registry.get_sample_value("qikflow_ingest_body_memory_bytes")
    assert value is not None
    return value


def test_holds_share_the_budget_and_give_it_back() -> None:
    metrics = IngestMetrics()
    budget = BodyMemoryBudget(DEFAULTS.max_body_memory_bytes, metrics)
    assert budget.max_bytes == 16 * MIB
    first, second = BodyHold(budget), BodyHold(budget)

    assert first.grow_to(10 * MIB)
    assert first.grow_to(4 * MIB)  # holding more already: nothing changes
    assert second.grow_to(6 * MIB)
    assert budget.held == gauge(metrics) == 16 * MIB
    # One byte past the budget is refused, and the refused hold keeps what it held.
    assert not second.grow_to(6 * MIB + 1)
    assert second.size == 6 * MIB

    first.release()
    assert budget.held == gauge(metrics) == 6 * MIB
    assert second.grow_to(16 * MIB)
    second.release()
    first.release()  # twice is harmless
    assert budget.held == gauge(metrics) == 0


def test_connection_limits_default_to_the_settings_defaults() -> None:
    limits = ConnectionLimits.from_settings(DEFAULTS, IngestMetrics())
    assert limits.max_header_bytes == 16 * 1024
    assert limits.max_header_count == 100
    assert limits.header_timeout_s == limits.body_timeout_s == 1.0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limits.max_connections == default_max_connections(soft)


def test_max_connections_keeps_descriptors_for_kafka_and_the_spool() -> None:
    assert default_max_connections(192) == 192 - RESERVED_FDS == 128
    assert default_max_connections(20) == MIN_CONNECTIONS
    assert default_max_connections(resource.RLIM_INFINITY) == UNLIMITED_CONNECTIONS
    explicit = IngestSettings(allow_anonymous=True, max_connections=500)
    assert ConnectionLimits.from_settings(explicit, IngestMetrics()).max_connections == 500
