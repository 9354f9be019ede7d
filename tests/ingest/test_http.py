"""HTTP contract of the ingest against the real broker: bytes in, the same bytes in Kafka."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ingest import record as raw
from tests.fixtures.kafka import consume
from tests.ingest._server import IngestProcess, metric, start_ingest, wait_for

LIMIT = 4096
AUTH = ("qikchat", "second-secret")


@pytest.fixture
def ingest(topic_prefix: str, tmp_path: Path) -> Iterator[IngestProcess]:
    server = start_ingest(
        {
            "QIKFLOW_WEBHOOK_USERS": "qikchat:first-secret,qikchat:second-secret",
            "QIKFLOW_MAX_BODY_BYTES": str(LIMIT),
            "QIKFLOW_SPOOL_DIR": str(tmp_path / "spool"),
        },
        tmp_path / "ingest.log",
    )
    yield server
    assert server.terminate() in (0, -15), server.log()
    assert "Application shutdown complete" in server.log()


def bodies() -> list[bytes]:
    special = [
        b"",
        b"not json at all {",
        "{\"text\": \"नमस्ते 🙏 héllo\"}".encode(),
        bytes(range(256)),
        os.urandom(1000),
        b"\x00\x00\x00",
        b"[1, 2, 3]",
        b"x" * LIMIT,
    ]
    samples = [f'{{"event":"whatsapp:message:in","n":{i}}}'.encode() for i in range(300)]
    return special + samples


async def test_bodies_reach_kafka_byte_exact_with_headers(
    ingest: IngestProcess, kafka_bootstrap: str, topic_prefix: str
) -> None:
    sent = bodies()
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=ingest.url, auth=AUTH, limits=limits) as client:
        responses = await asyncio.gather(*(
            client.post("/webhooks/qikchat/acme-in", content=body,
                        headers={"content-type": "application/json"})
            for body in sent
        ))
    assert [r.status_code for r in responses] == [200] * len(sent)
    receipts = [r.json()["receipt_id"] for r in responses]
    assert len(set(receipts)) == len(receipts)

    records = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=len(sent))
    assert Counter(r.value for r in records) == Counter(sent)
    by_receipt = {dict(r.headers)[raw.RECEIPT_ID].decode(): r for r in records}
    assert set(by_receipt) == set(receipts)
    for response, body in zip(responses, sent, strict=True):
        record = by_receipt[response.json()["receipt_id"]]
        headers = dict(record.headers)
        assert record.value == body
        assert headers[raw.ACCOUNT] == b"acme-in"
        assert headers[raw.SOURCE] == b"qikchat"
        assert headers[raw.CONTENT_TYPE] == b"application/json"
        assert headers[raw.REMOTE_ADDR] == b"127.0.0.1"
        assert int(headers[raw.RECEIVED_AT_MS]) > 1_700_000_000_000


async def test_auth_refusals_store_nothing(
    ingest: IngestProcess, kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        missing = await client.post("/webhooks/qikchat", content=b"missing")
        wrong = await client.post("/webhooks/qikchat", content=b"wrong",
                                  auth=("qikchat", "nope"))
        rotated_old = await client.post("/webhooks/qikchat", content=b"first",
                                        auth=("qikchat", "first-secret"))
        rotated_new = await client.post("/webhooks/qikchat", content=b"second", auth=AUTH)
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Basic")
    assert missing.json()["error"] == "unauthorized"
    assert rotated_old.status_code == rotated_new.status_code == 200

    records = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=2)
    assert sorted(r.value for r in records) == [b"first", b"second"]
    assert metric(ingest.url, 'qikflow_ingest_auth_failures_total{reason="missing"}') == 1
    assert metric(ingest.url, 'qikflow_ingest_auth_failures_total{reason="wrong"}') == 1


async def test_size_limit_methods_and_paths(
    ingest: IngestProcess, kafka_bootstrap: str, topic_prefix: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1024

    async with httpx.AsyncClient(base_url=ingest.url, auth=AUTH) as client:
        declared = await client.post("/webhooks/qikchat", content=b"z" * (LIMIT + 1))
        streamed = await client.post("/webhooks/qikchat", content=chunks())
        exact = await client.post("/webhooks/qikchat", content=b"e" * LIMIT)
        get = await client.get("/webhooks/qikchat")
        put = await client.put("/webhooks/qikchat", content=b"{}")
        bad_account = await client.post("/webhooks/qikchat/not.an.account", content=b"{}")
        long_account = await client.post("/webhooks/qikchat/" + "a" * 65, content=b"{}")
        elsewhere = await client.post("/webhooks/other", content=b"{}")
    assert declared.status_code == streamed.status_code == 413
    assert declared.json() == {"error": "payload_too_large", "limit_bytes": LIMIT}
    assert exact.status_code == 200
    assert get.status_code == put.status_code == 405
    assert bad_account.status_code == long_account.status_code == elsewhere.status_code == 404

    records = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=1)
    assert [r.value for r in records] == [b"e" * LIMIT]
    assert metric(ingest.url, 'qikflow_ingest_requests_total{status="413"}') == 2
    assert metric(ingest.url, 'qikflow_ingest_rejected_total{reason="too_large"}') == 2
    assert metric(ingest.url, 'qikflow_ingest_requests_total{status="200"}') == 1
    assert metric(ingest.url, 'qikflow_ingest_bodies_stored_total{where="kafka"}') == 1


def test_health_and_readiness(ingest: IngestProcess) -> None:
    assert httpx.get(f"{ingest.url}/healthz").json() == {"status": "alive"}
    ready = httpx.get(f"{ingest.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["kafka"] == "available"
    assert ready.json()["spool_depth"] == 0


def test_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIKFLOW_WEBHOOK")}
    server = start_ingest({**env, "QIKFLOW_SPOOL_DIR": str(tmp_path)}, tmp_path / "log",
                          wait_ready=False)
    assert server.process.wait(30) == 2
    assert "QIKFLOW_ALLOW_ANONYMOUS" in server.log()


async def test_anonymous_mode_warns_and_accepts(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    server = start_ingest({"QIKFLOW_ALLOW_ANONYMOUS": "true",
                           "QIKFLOW_SPOOL_DIR": str(tmp_path / "spool")}, tmp_path / "log")
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.post("/webhooks/qikchat", content=b"anon")
        assert response.status_code == 200
        assert "WITHOUT credentials" in server.log()
    finally:
        assert server.terminate() in (0, -15)


async def test_several_workers_share_nothing_and_metrics_sum(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    spool_dir = tmp_path / "spool"
    server = start_ingest({"QIKFLOW_WEBHOOK_USERS": "qikchat:second-secret",
                           "QIKFLOW_SPOOL_DIR": str(spool_dir)}, tmp_path / "log", workers=2)
    try:
        # Each worker owns a spool file of its own, locked for its life.
        assert wait_for(lambda: len(list(spool_dir.glob("spool-*.sqlite"))) == 2)
        sent = [f'{{"n":{i}}}'.encode() for i in range(60)]
        async with httpx.AsyncClient(base_url=server.url, auth=AUTH,
                                     limits=httpx.Limits(max_connections=20)) as client:
            responses = await asyncio.gather(*(client.post("/webhooks/qikchat", content=b)
                                               for b in sent))
        assert {r.status_code for r in responses} == {200}
        # /metrics on any worker reports the sum over both.
        assert metric(server.url, 'qikflow_ingest_requests_total{status="200"}') == 60
        records = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=60)
        assert sorted(r.value for r in records) == sorted(sent)
    finally:
        assert server.terminate() in (0, -15)
