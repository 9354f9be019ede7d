"""The second baseline of bench/ingest: what a user would write instead of the ingest.

One Starlette endpoint that checks Basic Auth and answers after aiokafka's `send_and_wait`
with `acks=all`, one producer made in the lifespan, served by the same uvicorn stack
(`ingest.server.serve`, uvloop + httptools). No spool, no limits, no metrics: the least
that still answers only once Kafka has the body. bench/ingest creates its topic,
`<QIKFLOW_TOPIC_PREFIX>.handwritten`, before the server starts.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOPIC_SUFFIX = ".handwritten"


def create_app() -> Starlette:
    bootstrap = os.environ["QIKFLOW_KAFKA_BOOTSTRAP"]
    topic = os.environ["QIKFLOW_TOPIC_PREFIX"] + TOPIC_SUFFIX
    user, _, password = os.environ["QIKFLOW_WEBHOOK_USERS"].partition(":")
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    producers: list[AIOKafkaProducer] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all") as producer:
            producers.append(producer)
            yield

    async def receive(request: Request) -> JSONResponse:
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            return JSONResponse({"status": "unauthorized"}, 401)
        await producers[0].send_and_wait(topic, await request.body())
        return JSONResponse({"status": "accepted"})

    return Starlette(routes=[Route("/webhooks/qikchat", receive, methods=["POST"])],
                     lifespan=lifespan)
