"""Fixtures of the ingest tests that stop Kafka: a broker of their own, never the shared one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qikflow.local.kafka import LocalKafka
from tests._ports import broker_port, free_port
from tests.ingest._proxy import CuttingProxy, ProxiedKafka


@pytest.fixture(scope="session")
def outage_broker(kafka_bootstrap: str) -> Iterator[LocalKafka]:
    """A broker the tests may stop and start; each test starts it again if it is down."""
    # A name of its own per session: two test runs at once must not share a data folder.
    broker = LocalKafka(home=Path(".qikflow"), name=f"ingest-outage-{uuid.uuid4().hex[:8]}",
                        port=broker_port())
    broker.start()
    yield broker
    broker.wipe()


@pytest.fixture
def outage_env(outage_broker: LocalKafka, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment of an ingest on the outage broker, with its own spool directory."""
    outage_broker.start()
    return {
        "QIKFLOW_KAFKA_BOOTSTRAP": outage_broker.bootstrap,
        "QIKFLOW_WEBHOOK_USERS": "qikchat:s3cret",
        "QIKFLOW_SPOOL_DIR": str(tmp_path / "spool"),
    }


@pytest.fixture(scope="session")
def proxied(kafka_bootstrap: str) -> Iterator[tuple[ProxiedKafka, CuttingProxy]]:
    """A broker of its own behind a proxy that can cut the connections open now."""
    broker = ProxiedKafka(home=Path(".qikflow"), name=f"ingest-proxied-{uuid.uuid4().hex[:8]}",
                          port=broker_port(), advertised_port=free_port())
    proxy = CuttingProxy(broker.advertised_port, broker.port)
    proxy.start()
    broker.start()
    yield broker, proxy
    broker.wipe()
    proxy.stop()
