"""The console app served in-process by uvicorn on a free port, for HTTP-level tests."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette

from qikflow.console.server import GRACEFUL_SHUTDOWN_S
from tests._ports import free_port

START_S = 30.0
# The lifespan's own shutdown (sampler, Kafka clients, pool) gets this long after the
# connections' grace; more is a hang, reported with where every task waits.
STOP_S = GRACEFUL_SHUTDOWN_S + 20.0


def _task_stacks() -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.print_stack(limit=12, file=out)
    return out.getvalue()


@asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` running on uvicorn (lifespan and all) until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
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
        done, _ = await asyncio.wait([serving], timeout=STOP_S)
        if not done:
            stacks = _task_stacks()
            server.force_exit = True
            raise AssertionError(f"the console app did not stop within {STOP_S:.0f} s; "
                                 f"its tasks wait here:\n{stacks}")
        serving.result()
