"""The baseline for bench/ingest: a Starlette endpoint that answers 200 and stores nothing."""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def accept(request: Request) -> Response:
    await request.body()
    return Response(orjson.dumps({"status": "accepted"}), 200, media_type="application/json")


def create_app() -> Starlette:
    return Starlette(routes=[Route("/webhooks/qikchat", accept, methods=["POST"])])
