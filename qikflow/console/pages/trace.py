"""Trace: every place one webhook went, for a receipt id or a message id."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from qikflow.console.app import console_of
from qikflow.operations.trace import trace


async def page(request: Request) -> Response:
    console = console_of(request)
    ident = request.query_params.get("id", "").strip()
    result = None
    if ident:
        result = await trace(console.pipeline, console.db, ident,
                             window_s=console.settings.search_window_s,
                             scan_limit=console.settings.page_scan_records)
    return console.render(request, "trace.html", {"ident": ident, "trace": result})
