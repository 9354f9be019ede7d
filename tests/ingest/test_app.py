"""HTTP contract of ingest/app.py against the real broker: bytes in, the same bytes in Kafka.

Every answer is JSON; refusals store nothing; slow bodies and too many bodies at once are
refused without holding up anyone else. The limits run at the defaults a user gets.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ingest import record as raw
from ingest.settings import IngestSettings
from tests.fixtures.kafka import consume
from tests.ingest._raw_http import (
    RawAnswer,
    basic,
    closed,
    connect,
    head,
    read_answer,
    trickle,
)
from tests.ingest._server import (
    IngestProcess,
    metric,
    start_default_ingest,
    start_ingest,
    wait_for,
)

LIMIT = 4096
AUTH = ("qikchat", "second-secret")
DEFAULT_AUTH = ("qikchat", "s3cret")
DEFAULTS = IngestSettings(allow_anonymous=True)


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


@pytest.fixture
def default_ingest(topic_prefix: str, tmp_path: Path) -> Iterator[IngestProcess]:
    server = start_default_ingest(tmp_path)
    yield server
    assert server.terminate() in (0, -15), server.log()


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
    assert missing.json()["error"] == wrong.json()["error"] == "unauthorized"
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
        slash = await client.post("/webhooks/qikchat/", content=b"{}",
                                  headers={"host": "evil.example"})
    assert declared.status_code == streamed.status_code == 413
    assert declared.json() == {"error": "payload_too_large", "limit_bytes": LIMIT}
    assert exact.status_code == 200
    for wrong_method in (get, put):
        assert wrong_method.status_code == 405
        assert wrong_method.json() == {"error": "method_not_allowed"}
        assert wrong_method.headers["allow"] == "POST"
    for unknown in (bad_account, long_account, elsewhere, slash):
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/json"
        assert unknown.json()["error"] == "not_found"
    # A trailing slash is no redirect, least of all one built from the Host header.
    assert "location" not in slash.headers

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


async def test_refused_credentials_are_summed_up_never_logged_one_by_one(
    ingest: IngestProcess,
) -> None:
    wrong_password = "not-the-s3cret"
    async with httpx.AsyncClient(base_url=ingest.url,
                                 limits=httpx.Limits(max_connections=20)) as client:
        answers = await asyncio.gather(
            *(client.post("/webhooks/qikchat", content=b"{}", auth=("qikchat", wrong_password))
              for _ in range(150)),
            *(client.post("/webhooks/qikchat", content=b"{}") for _ in range(40)),
            *(client.post("/webhooks/qikchat", content=b"{}",
                          headers={"authorization": "Bearer " + wrong_password})
              for _ in range(10)),
        )
    assert {a.status_code for a in answers} == {401}
    assert metric(ingest.url, 'qikflow_ingest_auth_failures_total{reason="wrong"}') == 150
    assert metric(ingest.url, 'qikflow_ingest_auth_failures_total{reason="missing"}') == 40
    assert metric(ingest.url, 'qikflow_ingest_auth_failures_total{reason="malformed"}') == 10
    # Nothing per request: the summary comes once a minute, or when the ingest stops.
    assert [line for line in ingest.log().splitlines() if " refused " in line] == []

    assert ingest.terminate() in (0, -15)
    summaries = [line for line in ingest.log().splitlines() if " refused " in line]
    assert len(summaries) == 1, summaries
    assert "refused 200 webhooks for their credentials" in summaries[0]
    assert "wrong=150, missing=40, malformed=10" in summaries[0]
    assert "top clients: 127.0.0.1 (200)" in summaries[0]
    assert wrong_password not in ingest.log()


async def test_trickled_body_gets_408_while_others_are_answered(
    default_ingest: IngestProcess, kafka_bootstrap: str, topic_prefix: str
) -> None:
    slow_reader, slow_writer = await connect(default_ingest.url)
    slow_writer.write(head("POST", "/webhooks/qikchat",
                           {"Authorization": basic(*DEFAULT_AUTH), "Content-Length": "1000"}))
    trickling = asyncio.create_task(trickle(slow_writer, b"s" * 1000, 0.05))
    slow_answer = asyncio.create_task(read_answer(slow_reader))
    async with httpx.AsyncClient(base_url=default_ingest.url, auth=DEFAULT_AUTH) as client:
        other = await client.post("/webhooks/qikchat", content=b"quick")
    # Answered while the slow body is still held, well before it is dropped.
    assert other.status_code == 200
    assert not slow_answer.done()

    answer = await slow_answer
    trickling.cancel()
    assert answer.status == 408
    assert answer.json() == {"error": "body_timeout", "limit_ms": DEFAULTS.body_timeout_ms}
    assert answer.headers["connection"] == "close"
    assert await closed(slow_reader) == b""
    slow_writer.close()

    records = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=1)
    assert [r.value for r in records] == [b"quick"]
    assert metric(default_ingest.url, 'qikflow_ingest_rejected_total{reason="body_timeout"}') == 1
    assert metric(default_ingest.url, 'qikflow_ingest_requests_total{status="408"}') == 1


async def _sent_across_a_stall(ingest: IngestProcess, request: bytes, split: int,
                               stall_s: float) -> RawAnswer:
    """Send `request[:split]`, stop the ingest (SIGSTOP) for `stall_s` while the rest
    arrives, let it go on, and return its answer."""
    reader, writer = await connect(ingest.url)
    writer.write(request[:split])
    await writer.drain()
    await asyncio.sleep(0.4)  # the ingest has read the first part: its deadline runs
    ingest.process.send_signal(signal.SIGSTOP)
    try:
        writer.write(request[split:])
        await writer.drain()
        await asyncio.sleep(stall_s)
    finally:
        ingest.process.send_signal(signal.SIGCONT)
    answer = await read_answer(reader)
    writer.close()
    return answer


async def test_a_body_that_arrived_while_the_ingest_was_stalled_is_taken_not_timed_out(
    default_ingest: IngestProcess, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The process stalls past the body timeout (SIGSTOP: a long GC pause, a starved CPU)
    while the body arrives. On waking, its event loop runs the expired timer before it reads
    the socket: the body that is already there must be read, not answered 408 (Qikchat does
    not retry a failed webhook)."""
    body = b'{"late": "but here"}'
    head_bytes = head("POST", "/webhooks/qikchat", {"Authorization": basic(*DEFAULT_AUTH),
                                                   "Content-Length": str(len(body))})
    answer = await _sent_across_a_stall(default_ingest, head_bytes + body, len(head_bytes),
                                        DEFAULTS.body_timeout_ms / 1000 + 0.5)
    assert answer.status == 200, answer.json()
    records = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=1)
    assert [r.value for r in records] == [body]


async def test_a_head_that_arrived_while_the_ingest_was_stalled_is_taken_not_timed_out(
    default_ingest: IngestProcess, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The same for the head: its first bytes start the head deadline, the rest arrives
    while the process is stopped past that deadline."""
    body = b'{"head": "in two parts"}'
    request = head("POST", "/webhooks/qikchat", {"Authorization": basic(*DEFAULT_AUTH),
                                                "Content-Length": str(len(body))}) + body
    answer = await _sent_across_a_stall(default_ingest, request, 10,
                                        DEFAULTS.header_timeout_ms / 1000 + 0.5)
    assert answer.status == 200, answer.json()
    records = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=1)
    assert [r.value for r in records] == [body]


async def test_bodies_past_the_memory_budget_get_a_fast_503(
    default_ingest: IngestProcess,
) -> None:
    # Each request declares a body at the largest size and then sends nothing more, so
    # each holds its size in the budget until its body times out: the budget fits 16.
    fit = DEFAULTS.max_body_memory_bytes // DEFAULTS.max_body_bytes
    over = 4
    connections = [await connect(default_ingest.url) for _ in range(fit + over)]
    for _, writer in connections:
        writer.write(head("POST", "/webhooks/qikchat", {
            "Authorization": basic(*DEFAULT_AUTH), "Content-Length": str(DEFAULTS.max_body_bytes)}))
    answers = await asyncio.gather(*(read_answer(reader) for reader, _ in connections))

    busy = [a for a in answers if a.status == 503]
    assert len(busy) == over
    for answer in busy:
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["error"] == "busy"
        assert "nothing was kept" in answer.json()["detail"]
    assert [a.status for a in answers].count(408) == fit
    for reader, writer in connections:
        assert await closed(reader) == b""
        writer.close()
    assert metric(default_ingest.url,
                  'qikflow_ingest_rejected_total{reason="body_memory_full"}') == over
    assert metric(default_ingest.url, "qikflow_ingest_body_memory_bytes") == 0
