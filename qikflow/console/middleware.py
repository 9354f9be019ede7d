"""The console's one middleware: log in every request (Basic Auth), and set the headers that
keep its pages to themselves (no framing, no scripts or styles from elsewhere, no caching of
pages that show bodies)."""

from __future__ import annotations

import logging

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qikflow.console.auth import ConsoleUsers
from qikflow.console.metrics import ConsoleMetrics

logger = logging.getLogger(__name__)

OPEN_PATHS = ("/healthz", "/metrics")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
LOGIN_HINT = ("Log in with the console's own credentials (QIKFLOW_CONSOLE_USERS, or the file "
              "that `qikflow up` printed).\n")


class LoginMiddleware:
    def __init__(self, app: ASGIApp, users: ConsoleUsers, metrics: ConsoleMetrics) -> None:
        self.app = app
        self.users = users
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        if scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, secured)
            return
        user, why = self.users.user(Headers(scope=scope).get("authorization"))
        if user is None:
            self.metrics.auth_failures.labels(why).inc()
            response = PlainTextResponse(LOGIN_HINT, 401, headers={
                "WWW-Authenticate": 'Basic realm="qikflow console", charset="UTF-8"'})
            await response(scope, receive, secured)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, secured)
