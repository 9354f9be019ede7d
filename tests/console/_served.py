"""The console app served in-process by uvicorn on a free port, for HTTP-level tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette

from tests._ports import free_port

START_S = 30.0


@asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` running on uvicorn (lifespan and all) until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + START_S
    while not server.started:  # uvicorn offers no event for it
        if serving.done() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the console app did not start: {serving!r}")
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     follow_redirects=False) as client:
            yield client
    finally:
        server.should_exit = True
        await serving
