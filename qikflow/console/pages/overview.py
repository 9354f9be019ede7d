"""The overview: one row per stage, live (the panel is fetched again every sample)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from qikflow.console.app import console_of
from qikflow.console.overview import build


async def page(request: Request) -> Response:
    console = console_of(request)
    overview = build(console.sampler, console.pipeline.topics)
    return console.render(request, "overview.html", {
        "overview": overview, "refresh_ms": int(console.settings.sample_interval_s * 1000)})


async def panel(request: Request) -> Response:
    console = console_of(request)
    overview = build(console.sampler, console.pipeline.topics)
    return console.render(request, "_panel.html", {"overview": overview})
