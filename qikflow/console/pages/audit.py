"""The audit trail: who re-drove or replayed what, newest first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from qikflow.console.app import console_of

SHOWN = 200


async def page(request: Request) -> Response:
    console = console_of(request)
    return console.render(request, "audit.html", {
        "entries": console.audit.recent(SHOWN), "path": console.audit.path})
