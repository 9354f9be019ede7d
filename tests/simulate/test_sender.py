"""The sender against a real HTTP server: paced, authenticated, every answer recorded."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qikflow.simulate._progress import Progress
from qikflow.simulate.generator import generate
from qikflow.simulate.sender import WebhookSender, webhook_url

AUTH = "Basic " + base64.b64encode(b"sim:secret").decode()


class Receiver:
    """A webhook endpoint that keeps every body and refuses every 10th request."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []

    async def receive(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != AUTH:
            return JSONResponse({"error": "unauthorized"}, 401)
        body = await request.body()
        self.received.append((request.url.path, body))
        if len(self.received) % 10 == 0:
            return JSONResponse({"error": "unavailable"}, 503)
        return JSONResponse({"status": "accepted", "receipt_id": f"r{len(self.received)}"})


async def _started(server: uvicorn.Server) -> None:
    for _ in range(1000):
        if server.started:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("uvicorn did not start within 10 s")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    app_state = Receiver()
    app = Starlette(routes=[
        Route("/webhooks/qikchat", app_state.receive, methods=["POST"]),
        Route("/webhooks/qikchat/{account}", app_state.receive, methods=["POST"]),
    ])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="off", ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await _started(server)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app_state, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def test_webhook_url_adds_the_path_and_account() -> None:
    assert webhook_url("http://h:8000", None) == "http://h:8000/webhooks/qikchat"
    assert webhook_url("http://h:8000/", "acme") == "http://h:8000/webhooks/qikchat/acme"
    assert webhook_url("http://h/hooks/q/", "acme") == "http://h/hooks/q/acme"


async def test_sends_every_body_on_schedule_and_counts_refusals(
    receiver: tuple[Receiver, str],
) -> None:
    app_state, url = receiver
    webhooks, _ = generate(seed=3, rate_per_s=100, duration_s=1, accounts=("acme", None))
    stream = io.StringIO()
    sender = WebhookSender(url, user="sim", password="secret", concurrency=8,
                           progress=Progress(len(webhooks), stream))
    report = await sender.run(webhooks)

    assert sorted(body for _, body in app_state.received) == sorted(w.body for w in webhooks)
    paths = {path for path, _ in app_state.received}
    assert paths == {"/webhooks/qikchat", "/webhooks/qikchat/acme"}
    assert [r.index for r in report.results] == list(range(100))
    assert report.status_counts() == {200: 90, 503: 10}
    assert len(report.acked()) == report.ok == 90
    assert all(r.receipt_id for r in report.results if r.status_code == 200)
    assert sorted(r.completion for r in report.results) == list(range(100))
    # Pacing: nothing leaves before its planned time (asyncio may wake a timer a hair early).
    assert all(r.started_s >= w.send_at_s - 0.001
               for r, w in zip(report.results, webhooks, strict=True))
    # Not a terminal: a line per tenth, not one per request.
    assert 2 <= len(stream.getvalue().splitlines()) <= 11
    assert "100/100 sent, 90 ok, 10 not ok" in stream.getvalue()


async def test_wrong_credentials_are_counted_not_hidden(receiver: tuple[Receiver, str]) -> None:
    _, url = receiver
    webhooks, _ = generate(seed=3, rate_per_s=50, duration_s=0.2)
    report = await WebhookSender(url, user="sim", password="wrong").run(webhooks)
    assert report.status_counts() == {401: len(webhooks)}
    assert report.acked() == set()
    assert "401: 10" in report.summary()
