"""The webhook endpoint, `POST /webhooks/qikchat[/{account}]`, as a plain ASGI app.

It is the ingest's hot path, so it does without Starlette's layers: `IngestStarlette`
(ingest/app.py) hands it these requests before its middleware stack, whose layers
(`ServerErrorMiddleware`, `ExceptionMiddleware`, the router, `request_response`, `Request`)
took about a quarter of the ingest's CPU (docs/performance.md). Everything else, and these
paths under a `root_path`, still goes through Starlette, which routes them to the same
endpoint. The answers are those of the Starlette app, byte for byte: the same JSON and
headers, a JSON 500 for a bug (then re-raised for uvicorn to log), 405 and 404 from the
router.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Protocol

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ingest.answers import json_response, server_error
from ingest.auth import Credentials
from ingest.deadlines import TaskDeadline
from ingest.errors import SpoolError
from ingest.limits import BodyHold, BodyMemoryBudget, ConnectionLimits
from ingest.metrics import IngestMetrics
from ingest.publisher import RawPublisher
from ingest.record import RawRecord
from ingest.refusals import RefusalSummary
from ingest.settings import IngestSettings

logger = logging.getLogger(__name__)

PATH = "/webhooks/qikchat"
ACCOUNT_PREFIX = PATH + "/"
ACCOUNT_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
DISCARD_CAP_BYTES = 1024 * 1024
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="qikflow", charset="UTF-8"'}
MEMORY_RETRY_AFTER_S = 1
# The 200's headers as Starlette's Response writes them: length first, then the type.
JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class WebhookState(Protocol):
    """What the endpoint reads of the ingest: `ingest.app.IngestApp` provides it."""

    settings: IngestSettings
    metrics: IngestMetrics
    credentials: Credentials
    limits: ConnectionLimits
    body_memory: BodyMemoryBudget
    auth_refusals: RefusalSummary

    @property
    def publisher(self) -> RawPublisher:
        """The running publisher (only inside the app's lifespan)."""


class _BodyMemoryFull(Exception):
    """The body would pass QIKFLOW_MAX_BODY_MEMORY_BYTES (answered 503, nothing kept)."""


def webhook_account(scope: Scope) -> str | None:
    """The `{account}` label of a webhook POST ("" without one), or None when Starlette
    must route the request (another path or method, a `root_path`)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path == PATH:
        return ""
    if path.startswith(ACCOUNT_PREFIX):
        account = path[len(ACCOUNT_PREFIX):]
        if account and "/" not in account:
            return account
    return None


class WebhookEndpoint:
    """Authenticates, bounds and stores one webhook body; answers once it is durable."""

    def __init__(self, ingest: WebhookState) -> None:
        self.ingest = ingest
        self._requests_by_status: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As a Starlette route's endpoint (the account in `path_params`)."""
        await self.handle(scope, receive, send, scope["path_params"].get("account", ""))

    async def handle(self, scope: Scope, receive: Receive, send: Send, account: str) -> None:
        started = time.perf_counter()
        answered = False

        async def sending(message: Any) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            answer = await self._answer(scope, receive, account, started)
            status = 200 if isinstance(answer, bytes) else answer.status_code
            counter = self._requests_by_status.get(status)
            if counter is None:
                counter = self._requests_by_status[status] = (
                    self.ingest.metrics.requests.labels(str(status)))
            counter.inc()
            if isinstance(answer, bytes):
                answered = True
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", b"%d" % len(answer)), JSON_CONTENT_TYPE]})
                await send({"type": "http.response.body", "body": answer})
            else:
                await answer(scope, receive, sending)
        except Exception as error:
            # What Starlette's ServerErrorMiddleware does: a JSON 500 unless an answer
            # began, then the error goes on for uvicorn to log.
            if not answered:
                await (await server_error(Request(scope), error))(scope, receive, send)
            raise

    async def _answer(self, scope: Scope, receive: Receive, account: str,
                      started: float) -> Response | bytes:
        """The answer: a Response, or the 200's JSON body."""
        ingest = self.ingest
        if account and not ACCOUNT_PATTERN.fullmatch(account):
            return json_response(404, {"error": "not_found",
                                       "detail": "account must match [A-Za-z0-9_-]{1,64}"})
        authorization = content_length = None
        content_type = ""
        for name, value in scope["headers"]:
            # The first of each, as Starlette's Headers.get.
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"content-length":
                if content_length is None:
                    content_length = value.decode("latin-1")
            elif name == b"content-type" and not content_type:
                content_type = value.decode("latin-1")
        failure = ingest.credentials.check(authorization)
        if failure is not None:
            ingest.metrics.auth_failures.labels(failure.value).inc()
            ingest.auth_refusals.record(failure.value, _client(scope))
            return json_response(401, {"error": "unauthorized",
                                       "detail": f"Basic credentials {failure.value}"},
                                 WWW_AUTHENTICATE)
        hold = BodyHold(ingest.body_memory)
        try:
            return await self._store(scope, receive, account, content_length or "",
                                     content_type, hold, started)
        finally:
            hold.release()

    async def _store(self, scope: Scope, receive: Receive, account: str, content_length: str,
                     content_type: str, hold: BodyHold, started: float) -> Response | bytes:
        ingest = self.ingest
        # A body that ended with its head (the usual webhook) cannot be late: no timer.
        deadline = (None if _body_complete(receive)
                    else TaskDeadline(asyncio.get_running_loop(), ingest.limits.body_timeout_s))
        try:
            body = await self._read_body(receive, content_length, hold)
        except asyncio.CancelledError:
            if deadline is None or not deadline.expired():
                raise
            return self._refuse(408, "body_timeout", _client(scope), {
                "error": "body_timeout", "limit_ms": ingest.settings.body_timeout_ms,
            }, {"Connection": "close"})
        except ClientDisconnect:
            # The sender went away before the body ended: nothing stored, nobody to answer.
            ingest.metrics.rejected.labels("client_disconnected").inc()
            logger.info("client %s disconnected before its body ended", _client(scope))
            return json_response(400, {"error": "incomplete_body"})
        except _BodyMemoryFull:
            return self._refuse(503, "body_memory_full", _client(scope), {
                "error": "busy",
                "detail": "too many bodies in memory at once; nothing was kept, please retry",
            }, {"Retry-After": str(MEMORY_RETRY_AFTER_S)})
        finally:
            if deadline is not None:
                deadline.cancel()
        if body is None:
            ingest.metrics.rejected.labels("too_large").inc()
            return json_response(413, {"error": "payload_too_large",
                                       "limit_bytes": ingest.settings.max_body_bytes},
                                 {"Connection": "close"})
        record = RawRecord.received(body, source=ingest.settings.source, account=account,
                                    content_type=content_type, remote_addr=_client(scope))
        try:
            stored = await ingest.publisher.publish(record)
        except SpoolError as error:
            ingest.metrics.rejected.labels(type(error).__name__).inc()
            logger.error("webhook %s NOT stored (Kafka unavailable, spool refused): %s",
                         record.receipt_id, error)
            return json_response(503, {
                "error": "unavailable",
                "detail": "neither Kafka nor the local spool could store the body; nothing "
                          "was kept, please retry",
            }, {"Retry-After": "5"})
        ingest.metrics.ack_seconds.observe(time.perf_counter() - started)
        ingest.metrics.body_bytes.observe(len(body))
        return orjson.dumps({"status": "accepted", "receipt_id": record.receipt_id,
                             "stored_in": stored})

    async def _read_body(self, receive: Receive, content_length: str,
                         hold: BodyHold) -> bytes | None:
        """The body, or None when it is over the limit.

        Keeps at most the limit in memory, held in the process's body memory budget (by
        `Content-Length` up front, else as it arrives; _BodyMemoryFull when it is spent). An
        oversized body is read on and discarded, never kept, up to DISCARD_CAP_BYTES more, so
        the sender reliably sees the 413 instead of a reset connection; past that the
        connection is closed without reading further.
        """
        limit = self.ingest.settings.max_body_bytes
        size_declared = int(content_length) if content_length.isdigit() else None
        if size_declared is not None and size_declared > limit + DISCARD_CAP_BYTES:
            return None
        keep = size_declared is None or size_declared <= limit
        if keep and not hold.grow_to(size_declared or 0):
            raise _BodyMemoryFull
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            more_body = message.get("more_body", False)
            chunk = message.get("body", b"")
            if not chunk:
                continue
            size += len(chunk)
            if size > limit + DISCARD_CAP_BYTES:
                return None
            if keep and size <= limit:
                if not hold.grow_to(size):
                    raise _BodyMemoryFull
                chunks.append(chunk)
        if size > limit:
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _refuse(self, status: int, reason: str, client: str, content: dict[str, Any],
                headers: dict[str, str]) -> Response:
        """A refusal that stored nothing: counted by reason, summed up in the periodic log."""
        self.ingest.metrics.rejected.labels(reason).inc()
        self.ingest.limits.summary.record(reason, client)
        return json_response(status, content, headers)


def _body_complete(receive: Receive) -> bool:
    """True when the whole body is already read from the socket, so that receiving it
    cannot wait: uvicorn's request-response cycle, whose `receive` this is, has seen the
    message's end (`more_body` False). False when unsure (another server)."""
    return getattr(getattr(receive, "__self__", None), "more_body", True) is False


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""
