"""Durability of the ingest on the real broker: outages, a full spool, SIGKILL under load.

These tests stop and start Kafka, so they use a broker instance of their own
(`outage`, port 39092) and never touch the shared test broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qikflow.local.kafka import LocalKafka
from tests.fixtures.kafka import consume
from tests.ingest._server import IngestProcess, metric, start_ingest, wait_for

AUTH = ("qikchat", "s3cret")
QIKCHAT_BUDGET_S = 2.0


@pytest.fixture(scope="module")
def outage_broker(kafka_bootstrap: str) -> Iterator[LocalKafka]:
    broker = LocalKafka(home=Path(".qikflow"), name="outage", port=39092)
    broker.start()
    yield broker
    broker.wipe()


@pytest.fixture
def env(outage_broker: LocalKafka, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    outage_broker.start()
    return {
        "QIKFLOW_KAFKA_BOOTSTRAP": outage_broker.bootstrap,
        "QIKFLOW_WEBHOOK_USERS": "qikchat:s3cret",
        "QIKFLOW_SPOOL_DIR": str(tmp_path / "spool"),
        "QIKFLOW_ACK_TIMEOUT_MS": "1000",
    }


async def post_all(url: str, bodies: list[bytes], concurrency: int = 20
                   ) -> list[tuple[bytes, int, float]]:
    """POST every body; return (body, status or 0 on a transport error, seconds)."""
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, auth=AUTH, timeout=10) as client:
        async def one(body: bytes) -> tuple[bytes, int, float]:
            async with semaphore:
                started = time.perf_counter()
                try:
                    response = await client.post("/webhooks/qikchat", content=body)
                except httpx.TransportError:
                    return body, 0, time.perf_counter() - started
                return body, response.status_code, time.perf_counter() - started
        return await asyncio.gather(*(one(b) for b in bodies))


def spool_depth(server: IngestProcess) -> int:
    depth: int = httpx.get(f"{server.url}/readyz", timeout=5).json()["spool_depth"]
    return depth


async def test_broker_outage_answers_within_budget_then_drains(
    env: dict[str, str], outage_broker: LocalKafka, topic_prefix: str, tmp_path: Path
) -> None:
    server = start_ingest(env, tmp_path / "ingest.log")
    try:
        before = [f'{{"phase":"before","n":{i}}}'.encode() for i in range(20)]
        assert {s for _, s, _ in await post_all(server.url, before)} == {200}

        outage_broker.stop()
        during = [f'{{"phase":"during","n":{i}}}'.encode() for i in range(60)]
        results = await post_all(server.url, during)
        assert {status for _, status, _ in results} == {200}
        slowest = max(seconds for _, _, seconds in results)
        assert slowest < QIKCHAT_BUDGET_S, f"slowest answer took {slowest:.2f}s"
        assert spool_depth(server) >= 1
        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["kafka"] == "unavailable" and ready["ready"] is True

        outage_broker.start()
        assert wait_for(lambda: spool_depth(server) == 0, timeout_s=60), server.log()
        records = await consume(outage_broker.bootstrap, [f"{topic_prefix}.raw"],
                                expected=len(before) + len(during))
        assert set(before + during) <= {r.value for r in records}
        spooled = metric(server.url, "qikflow_ingest_spooled_total")
        assert spooled >= 1
        assert metric(server.url, "qikflow_ingest_drained_total") == spooled
    finally:
        server.terminate()


async def test_spool_full_answers_503_and_says_nothing_was_kept(
    env: dict[str, str], outage_broker: LocalKafka, tmp_path: Path
) -> None:
    server = start_ingest({**env, "QIKFLOW_SPOOL_MAX_BYTES": "100"}, tmp_path / "ingest.log")
    try:
        outage_broker.stop()
        async with httpx.AsyncClient(base_url=server.url, auth=AUTH, timeout=10) as client:
            fits = await client.post("/webhooks/qikchat", content=b"a" * 60)
            refused = await client.post("/webhooks/qikchat", content=b"b" * 60)
        assert fits.status_code == 200
        assert refused.status_code == 503
        assert refused.json()["error"] == "unavailable"
        assert "nothing was kept" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "5"
        assert metric(server.url, 'qikflow_ingest_rejected_total{reason="SpoolFullError"}') == 1
        assert "NOT stored" in server.log()
    finally:
        server.terminate()


async def test_sigkill_under_load_loses_no_acknowledged_body(
    env: dict[str, str], outage_broker: LocalKafka, topic_prefix: str, tmp_path: Path
) -> None:
    log = tmp_path / "ingest.log"
    server = start_ingest(env, log)
    bodies = [f'{{"load":{i}}}'.encode() for i in range(600)]
    load = asyncio.ensure_future(post_all(server.url, bodies, concurrency=30))
    await asyncio.sleep(0.5)
    server.kill()
    first = await load
    acked = [body for body, status, _ in first if status == 200]
    assert 0 < len(acked) < len(bodies), "the kill should land mid-load"

    # Second round: bodies accepted into the spool while Kafka is down, then SIGKILL.
    server = start_ingest(env, log)
    outage_broker.stop()
    spooled = [f'{{"spooled":{i}}}'.encode() for i in range(40)]
    results = await post_all(server.url, spooled)
    assert {status for _, status, _ in results} == {200}
    server.kill()

    outage_broker.start()
    server = start_ingest(env, log)  # adopts the orphaned spool and drains it
    try:
        assert wait_for(lambda: spool_depth(server) == 0, timeout_s=60), server.log()
        expected = acked + spooled
        records = await consume(outage_broker.bootstrap, [f"{topic_prefix}.raw"],
                                expected=len(expected))
        missing = set(expected) - {r.value for r in records}
        assert not missing, f"{len(missing)} acknowledged bodies missing"
        assert "adopted spool" in log.read_text()
    finally:
        server.terminate()
