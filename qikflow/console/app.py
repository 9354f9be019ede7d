"""The console's ASGI app: settings, login, the sampler and the stores live in the lifespan.

    uvicorn --factory qikflow.console.app:create_app

Pages are server-rendered (Jinja2, autoescaped); the one script and the stylesheet are
served from `static/` by the app itself, so the console works on a machine without
internet. Errors of Kafka or PostgreSQL become a page that says what failed; a bad input
becomes a 400 page that says what to type instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from qikflow.console.auth import ConsoleUsers, CsrfTokens
from qikflow.console.metrics import ConsoleMetrics
from qikflow.console.middleware import LoginMiddleware
from qikflow.console.sampler import Sampler
from qikflow.console.settings import ConsoleSettings
from qikflow.operations.audit import AuditTrail
from qikflow.operations.database import Database
from qikflow.operations.errors import (
    BadInputError,
    DatabaseUnavailableError,
    KafkaUnavailableError,
    OperationError,
    UnknownIdError,
)
from qikflow.operations.pipeline import Pipeline
from qikflow.operations.records import show_body, shown_headers
from qikflow.operations.times import format_ms, format_time

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
# Set by `qikflow console` for the factory: the address it serves (loopback decides
# whether anonymous access is allowed).
HOST_ENV = "QIKFLOW_CONSOLE_BOUND_HOST"
# The sampler closes its Kafka clients when cancelled; a stop never waits longer.
SAMPLER_STOP_S = 5.0


class Console:
    """What every page shares; `request.app.state.console`."""

    def __init__(self, settings: ConsoleSettings, pipeline: Pipeline, host: str) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.users = ConsoleUsers.from_settings(settings, host)
        self.metrics = ConsoleMetrics()
        self.csrf = CsrfTokens()
        self.audit = AuditTrail(settings.audit_file)
        self.db = Database(pipeline.database_url)
        self.sampler = Sampler(pipeline, settings.targets(), settings.sample_interval_s,
                               settings.scrape_timeout_ms / 1000, self.metrics)
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals["prefix"] = pipeline.topics.prefix
        self.templates.env.filters.update(ms=format_ms, at=format_time, cell=_cell,
                                          shown=show_body, shown_headers=shown_headers)

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.audit.check()
        if self.users.anonymous:
            logger.warning("QIKFLOW_CONSOLE_ALLOW_ANONYMOUS=true: the console serves this "
                           "loopback address without credentials")
        sampling = asyncio.create_task(self.sampler.run(), name="overview-sampler")
        logger.info("console: topics %s.*, PostgreSQL %s, lake %s, metrics of %s",
                    self.pipeline.topics.prefix, self.db.where, self.pipeline.lake_dir,
                    ", ".join(self.settings.targets()) or "no process")
        try:
            yield
        finally:
            sampling.cancel()
            done, _ = await asyncio.wait([sampling], timeout=SAMPLER_STOP_S)
            if not done:
                logger.warning("console: the overview sampler did not stop within %.0f s "
                               "(a Kafka client not closing); stopping without it",
                               SAMPLER_STOP_S)
            elif not sampling.cancelled() and (failure := sampling.exception()) is not None:
                logger.error("console: the overview sampler had failed: %r", failure)
            await self.db.close()

    def render(self, request: Request, name: str, context: dict[str, Any],
               status_code: int = 200) -> Response:
        user = request.state.user
        return self.templates.TemplateResponse(
            request, name, {"user": user, "csrf": self.csrf.token(user), **context},
            status_code=status_code)


def _cell(value: object) -> str:
    """A PostgreSQL value as shown in a table: times in UTC, nothing as `-`."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def _operation_error(request: Request, exc: Exception) -> Response:
    console = console_of(request)
    status = 500
    if isinstance(exc, UnknownIdError):
        status = 404
    elif isinstance(exc, BadInputError):
        status = 400
    elif isinstance(exc, KafkaUnavailableError | DatabaseUnavailableError):
        status = 503
        store = "kafka" if isinstance(exc, KafkaUnavailableError) else "postgres"
        console.metrics.errors.labels(store).inc()
        logger.warning("console page %s: %s", request.url.path, exc)
    elif isinstance(exc, OperationError):
        status = 409
    return console.render(request, "error.html", {"error": str(exc), "status": status},
                          status_code=status)


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def _metrics(request: Request) -> Response:
    body, content_type = console_of(request).metrics.render()
    return Response(body, headers={"Content-Type": content_type})


def create_app(settings: ConsoleSettings | None = None, pipeline: Pipeline | None = None,
               host: str | None = None) -> Starlette:
    """The console app; settings and stores from the environment unless given."""
    from qikflow.console.pages import audit, dead_letters, messages, overview, trace

    console = Console(settings or ConsoleSettings(), pipeline or Pipeline.from_env(),
                      host or os.environ.get(HOST_ENV, "127.0.0.1"))
    routes = [
        Route("/", overview.page),
        Route("/overview/panel", overview.panel),
        Route("/messages", messages.search),
        Route("/messages/{message_id:path}", messages.detail),
        Route("/trace", trace.page),
        Route("/dead-letters", dead_letters.listing),
        Route("/dead-letters/letter", dead_letters.letter),
        Route("/dead-letters/redrive", dead_letters.redrive, methods=["POST"]),
        Route("/audit", audit.page),
        Route("/healthz", _healthz),
        Route("/metrics", _metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(LoginMiddleware, users=console.users, metrics=console.metrics)],
        exception_handlers={OperationError: _operation_error},
        lifespan=console.lifespan,
    )
    app.state.console = console
    return app
