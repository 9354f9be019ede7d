"""The hand-written baselines of bench/ingest: what a user would write instead of the ingest.

Both check Basic Auth and answer after aiokafka's `send_and_wait` with `acks=all`, one
producer made in the lifespan; no spool, no limits, no metrics: the least that still
answers only once Kafka has the body. bench/ingest creates their topic,
`<QIKFLOW_TOPIC_PREFIX>.handwritten`, before the server starts.

- `create_fastapi_app`: the endpoint as the issue measured it and as most users would
  write it, FastAPI, served by `uvicorn` with its defaults (uvloop and httptools, as
  installed) but for the access log, which the ingest does not write either.
- `create_app`: the leanest a hand-written endpoint gets, one Starlette route, served by
  the ingest's own tuned uvicorn settings (no date or server header).
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse as FastJSONResponse
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

TOPIC_SUFFIX = ".handwritten"


def _settings() -> tuple[str, str, str]:
    user, _, password = os.environ["QIKFLOW_WEBHOOK_USERS"].partition(":")
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return (os.environ["QIKFLOW_KAFKA_BOOTSTRAP"],
            os.environ["QIKFLOW_TOPIC_PREFIX"] + TOPIC_SUFFIX, expected)


def _producer_lifespan(bootstrap: str, producers: list[AIOKafkaProducer]
                       ) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all") as producer:
            producers.append(producer)
            yield

    return lifespan


def create_fastapi_app() -> FastAPI:
    bootstrap, topic, expected = _settings()
    producers: list[AIOKafkaProducer] = []
    app = FastAPI(lifespan=_producer_lifespan(bootstrap, producers))

    @app.post("/webhooks/qikchat")
    async def receive(request: Request,
                      authorization: str = Header(default="")) -> FastJSONResponse:
        if not hmac.compare_digest(authorization, expected):
            return FastJSONResponse({"status": "unauthorized"}, 401)
        await producers[0].send_and_wait(topic, await request.body())
        return FastJSONResponse({"status": "accepted"})

    return app


def create_app() -> Starlette:
    bootstrap, topic, expected = _settings()
    producers: list[AIOKafkaProducer] = []

    async def receive(request: StarletteRequest) -> JSONResponse:
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            return JSONResponse({"status": "unauthorized"}, 401)
        await producers[0].send_and_wait(topic, await request.body())
        return JSONResponse({"status": "accepted"})

    return Starlette(routes=[Route("/webhooks/qikchat", receive, methods=["POST"])],
                     lifespan=_producer_lifespan(bootstrap, producers))


def serve_as_users_do(app: str, port: int, workers: int = 1) -> None:
    """`uvicorn --factory APP --port PORT --workers N --no-access-log`: uvicorn's defaults."""
    import uvicorn

    uvicorn.run(app, factory=True, host="127.0.0.1", port=port, workers=workers,
                access_log=False, log_level="warning")

