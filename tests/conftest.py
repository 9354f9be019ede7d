"""Shared test fixtures: real services come from the modules in tests/fixtures/."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.kafka_cluster",
    "tests.fixtures.postgres",
]
