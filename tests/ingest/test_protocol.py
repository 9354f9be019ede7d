"""Tests of ingest/protocol.py: heads, slow clients and idle connections, on a real ingest.

Every limit runs at its default. "Others keep their answers" is checked functionally: a
well-behaved client is answered while the bad ones are held, before they are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest.settings import IngestSettings
from tests.ingest._raw_http import basic, closed, connect, head, read_answer, trickle
from tests.ingest._server import IngestProcess, metric, resident_mib, start_default_ingest

AUTH = ("qikchat", "s3cret")
DEFAULTS = IngestSettings(allow_anonymous=True)
# Head bytes the request line and Host of head("GET", "/healthz", ...) count, plus the
# overhead of one more header.
HEALTHZ_HEAD_BYTES = len("/healthz") + len("Host") + len("ingest") + 4 + 4
FLOOD_BYTES = 128 * 1024 * 1024


@pytest.fixture
def ingest(topic_prefix: str, tmp_path: Path) -> Iterator[IngestProcess]:
    server = start_default_ingest(tmp_path)
    yield server
    assert server.terminate() in (0, -15), server.log()


def refused(ingest: IngestProcess, reason: str) -> float:
    return metric(ingest.url, f'qikflow_ingest_connections_refused_total{{reason="{reason}"}}')


async def ask(url: str, request: bytes) -> tuple[int, object]:
    reader, writer = await connect(url)
    writer.write(request)
    answer = await read_answer(reader)
    writer.close()
    return answer.status, answer.json()


async def test_head_at_the_limit_is_served_and_one_byte_more_is_431(
    ingest: IngestProcess,
) -> None:
    padding = DEFAULTS.max_header_bytes - HEALTHZ_HEAD_BYTES - len("X-Pad")
    at_limit = head("GET", "/healthz", {"X-Pad": "p" * padding})
    over = head("GET", "/healthz", {"X-Pad": "p" * (padding + 1)})
    long_url = head("GET", "/healthz?" + "q" * DEFAULTS.max_header_bytes)

    assert await ask(ingest.url, at_limit) == (200, {"status": "alive"})
    too_large = (431, {"error": "header_too_large", "limit_bytes": DEFAULTS.max_header_bytes})
    assert await ask(ingest.url, over) == too_large
    assert await ask(ingest.url, long_url) == too_large
    assert refused(ingest, "header_too_large") == 2


async def test_more_headers_than_the_limit_is_431(ingest: IngestProcess) -> None:
    # Host is one of them.
    most = {f"X-H{i}": "v" for i in range(DEFAULTS.max_header_count - 1)}
    too_many = {f"X-H{i}": "v" for i in range(DEFAULTS.max_header_count)}

    assert await ask(ingest.url, head("GET", "/healthz", most)) == (200, {"status": "alive"})
    assert await ask(ingest.url, head("GET", "/healthz", too_many)) == (
        431, {"error": "too_many_headers", "limit": DEFAULTS.max_header_count})
    assert refused(ingest, "too_many_headers") == 1


async def test_header_flood_is_cut_off_while_others_are_answered(
    ingest: IngestProcess,
) -> None:
    idle_mib = resident_mib(ingest.process.pid)
    reader, writer = await connect(ingest.url)
    writer.write(b"POST /webhooks/qikchat HTTP/1.1\r\nHost: ingest\r\nX-Flood: ")
    chunk = b"f" * (1024 * 1024)

    async def flood() -> int:
        sent = 0
        try:
            while sent < FLOOD_BYTES:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        except (ConnectionError, OSError):
            pass
        return sent

    flooding = asyncio.create_task(flood())
    async with httpx.AsyncClient(base_url=ingest.url, auth=AUTH) as client:
        others = [await client.post("/webhooks/qikchat", content=b"{}") for _ in range(20)]
    sent = await flooding

    assert [o.status_code for o in others] == [200] * 20
    # The server hung up long before the 128 MB were sent (what got through sat in socket
    # buffers), and holds none of it.
    assert sent < FLOOD_BYTES
    await closed(reader)
    writer.close()
    assert resident_mib(ingest.process.pid) < idle_mib + 32
    assert refused(ingest, "header_too_large") == 1


async def test_trickled_heads_get_408_while_others_are_answered(
    ingest: IngestProcess,
) -> None:
    slow = [await connect(ingest.url) for _ in range(30)]
    request = head("POST", "/webhooks/qikchat", {"Authorization": basic(*AUTH)})
    trickles = [asyncio.create_task(trickle(writer, request, 0.05)) for _, writer in slow]
    answers = [asyncio.create_task(read_answer(reader)) for reader, _ in slow]

    async with httpx.AsyncClient(base_url=ingest.url, auth=AUTH) as client:
        other = await client.post("/webhooks/qikchat", content=b"{}")
    # Answered while the thirty slow heads are held, before any of them is dropped.
    assert other.status_code == 200
    assert not any(answer.done() for answer in answers)

    for answer in await asyncio.gather(*answers):
        assert answer.status == 408
        assert answer.json() == {"error": "header_timeout",
                                 "limit_ms": DEFAULTS.header_timeout_ms}
    for (reader, writer), trickling in zip(slow, trickles, strict=True):
        assert await closed(reader) == b""
        # Each was cut off long before its whole head was out.
        assert await trickling < len(request)
        writer.close()
    assert refused(ingest, "header_timeout") == 30


async def test_silent_connection_is_closed_like_an_idle_one(ingest: IngestProcess) -> None:
    reader, writer = await connect(ingest.url)
    assert await closed(reader) == b""  # closed after the keep-alive timeout, no answer
    writer.close()


async def test_unread_body_must_end_soon_after_the_answer(ingest: IngestProcess) -> None:
    # Refused for its credentials, so nobody reads the body; it trickles on.
    reader, writer = await connect(ingest.url)
    writer.write(head("POST", "/webhooks/qikchat", {"Content-Length": "1000"}))
    trickling = asyncio.create_task(trickle(writer, b"b" * 1000, 0.05))
    answer = await read_answer(reader)
    assert answer.status == 401

    assert await closed(reader) == b""
    assert await trickling < 1000
    writer.close()
    assert refused(ingest, "unread_body_timeout") == 1


async def test_connection_is_closed_when_idle_after_a_late_body(ingest: IngestProcess) -> None:
    # uvicorn cancels its keep-alive timer on each read and arms it again only with an
    # answer: a body that ends after its answer would leave the connection open for ever.
    reader, writer = await connect(ingest.url)
    writer.write(head("POST", "/webhooks/qikchat", {"Content-Length": "4"}))
    assert (await read_answer(reader)).status == 401
    writer.write(b"late")
    await writer.drain()
    assert await closed(reader) == b""
    writer.close()
    assert refused(ingest, "unread_body_timeout") == 0


async def test_trailers_past_the_head_limit_close_the_connection(ingest: IngestProcess) -> None:
    # A chunked body in small chunks, with a trailer, is a webhook like any other.
    reader, writer = await connect(ingest.url)
    writer.write(head("POST", "/webhooks/qikchat", {"Authorization": basic(*AUTH),
                                                     "Transfer-Encoding": "chunked"}))
    writer.write(b"".join(b"1\r\n%c\r\n" % byte for byte in b'{"small":"chunks"}'))
    writer.write(b"0\r\nX-Trailer: " + b"t" * 1000 + b"\r\n\r\n")
    stored = await read_answer(reader)
    assert stored.status == 200, stored.body
    writer.close()

    # httptools buffers a chunked body's trailers like headers: they count like a head.
    reader, writer = await connect(ingest.url)
    writer.write(head("POST", "/webhooks/qikchat", {"Transfer-Encoding": "chunked"}))
    assert (await read_answer(reader)).status == 401
    writer.write(b"2\r\n{}\r\n0\r\nX-Trailer: " + b"t" * DEFAULTS.max_header_bytes)
    await writer.drain()
    assert await closed(reader) == b""
    writer.close()
    assert refused(ingest, "trailer_too_large") == 1


@pytest.mark.parametrize(
    ("request_bytes", "reason", "error"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", "invalid_http", "bad_request"),
        (b"GET /h\xffalthz HTTP/1.1\r\nHost: ingest\r\n\r\n", "invalid_http", "bad_request"),
        (head("GET", "/healthz", {"Connection": "Upgrade", "Upgrade": "websocket"}),
         "upgrade", "upgrade_not_supported"),
        (head("POST", "/webhooks/qikchat", {"Connection": "Upgrade, HTTP2-Settings",
                                            "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAAQ"}),
         "upgrade", "upgrade_not_supported"),
    ],
)
async def test_what_is_not_plain_http_gets_a_json_400(
    ingest: IngestProcess, request_bytes: bytes, reason: str, error: str
) -> None:
    reader, writer = await connect(ingest.url)
    writer.write(request_bytes)
    answer = await read_answer(reader)
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == error
    assert await closed(reader) == b""
    writer.close()
    assert refused(ingest, reason) == 1
    assert "Invalid HTTP request" not in ingest.log()  # counted, not logged one by one
