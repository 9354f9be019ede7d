"""The ingest ASGI app: authenticate, bound the size, store the exact bytes, answer 200.

It never parses a body. Every answer is JSON; see docs/ingest.md for the HTTP contract.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Lifespan

from ingest._malloc import release_large_blocks_to_os
from ingest.answers import EXCEPTION_HANDLERS, json_response
from ingest.auth import Credentials
from ingest.deadlines import timeout_after_io
from ingest.drainer import SpoolDrainer
from ingest.errors import RawTopicTooSmallError, SpoolError
from ingest.limits import LIMITS_STATE_KEY, BodyHold, BodyMemoryBudget, ConnectionLimits
from ingest.metrics import IngestMetrics
from ingest.publisher import RawPublisher
from ingest.quarantine import Quarantine
from ingest.record import RawRecord
from ingest.refusals import RefusalSummary
from ingest.settings import IngestSettings
from ingest.spools import Spools
from qikflow._logging import configure_logging
from qikflow.config import KafkaSettings

logger = logging.getLogger(__name__)

ACCOUNT_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
DISCARD_CAP_BYTES = 1024 * 1024
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="qikflow", charset="UTF-8"'}
MEMORY_RETRY_AFTER_S = 1


class _BodyMemoryFull(Exception):
    """The body would pass QIKFLOW_MAX_BODY_MEMORY_BYTES (answered 503, nothing kept)."""


@dataclass
class _Services:
    spools: Spools
    publisher: RawPublisher
    drainer: SpoolDrainer


class IngestApp:
    """Holds the settings, metrics and (inside the lifespan) the Kafka and spool services."""

    def __init__(self, settings: IngestSettings, kafka: KafkaSettings) -> None:
        self.settings = settings
        self.kafka = kafka
        self.credentials = Credentials.from_settings(settings)
        self.metrics = IngestMetrics()
        self.limits = ConnectionLimits.from_settings(settings, self.metrics)
        self.body_memory = BodyMemoryBudget(settings.max_body_memory_bytes, self.metrics)
        self.auth_refusals = RefusalSummary("webhooks for their credentials")
        self._requests_by_status: dict[int, Any] = {}
        self._services: _Services | None = None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.credentials.anonymous:
            logger.warning("QIKFLOW_ALLOW_ANONYMOUS=true: webhooks are accepted WITHOUT "
                           "credentials; anyone who finds the URL can write to Kafka")
        settings = self.settings
        spool_dir = settings.resolved_spool_dir()
        spools = Spools(spool_dir, settings.spool_max_bytes, self.metrics)
        quarantine = Quarantine.open(spool_dir)
        publisher = RawPublisher(settings, self.kafka, spools, self.metrics)
        drainer = SpoolDrainer(publisher, spools, quarantine, self.metrics,
                               interval_s=settings.drain_interval_ms / 1000,
                               batch_size=settings.drain_batch_size,
                               stall_timeout_s=settings.drain_stall_timeout_ms / 1000)
        try:
            await publisher.start()
        except RawTopicTooSmallError as error:
            logger.error("ingest NOT started, nothing was stored: %s", error)
            await publisher.stop()
            await spools.close()
            raise
        await drainer.start()
        self._services = _Services(spools, publisher, drainer)
        logger.info("ingest ready: topic %s on %s, spool %s, %d credential(s), limit %d bytes",
                    publisher.topic, self.kafka.bootstrap, spools.own.path,
                    len(self.credentials.pairs), settings.max_body_bytes)
        try:
            yield
        finally:
            # Reverse order: stop draining, flush the producer, then close the spools.
            await drainer.stop()
            await publisher.stop()
            await spools.close()
            self._services = None
            logger.info("ingest stopped")

    @property
    def services(self) -> _Services:
        if self._services is None:
            raise RuntimeError("ingest services are not running (outside the lifespan)")
        return self._services

    # -- endpoints ---------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        started = time.perf_counter()
        response = await self._receive(request, started)
        counter = self._requests_by_status.get(response.status_code)
        if counter is None:
            counter = self._requests_by_status[response.status_code] = (
                self.metrics.requests.labels(str(response.status_code)))
        counter.inc()
        return response

    async def _receive(self, request: Request, started: float) -> Response:
        account = request.path_params.get("account", "")
        if account and not ACCOUNT_PATTERN.fullmatch(account):
            return json_response(404, {"error": "not_found",
                                       "detail": "account must match [A-Za-z0-9_-]{1,64}"})
        failure = self.credentials.check(request.headers.get("authorization"))
        if failure is not None:
            self.metrics.auth_failures.labels(failure.value).inc()
            self.auth_refusals.record(failure.value, _client(request))
            return json_response(401, {"error": "unauthorized",
                                       "detail": f"Basic credentials {failure.value}"},
                                 WWW_AUTHENTICATE)
        hold = BodyHold(self.body_memory)
        try:
            return await self._store(request, account, hold, started)
        finally:
            hold.release()

    async def _store(self, request: Request, account: str, hold: BodyHold,
                     started: float) -> Response:
        try:
            async with timeout_after_io(self.limits.body_timeout_s):
                body = await self._read_body(request, hold)
        except ClientDisconnect:
            # The sender went away before the body ended: nothing stored, nobody to answer.
            self.metrics.rejected.labels("client_disconnected").inc()
            logger.info("client %s disconnected before its body ended", _client(request))
            return json_response(400, {"error": "incomplete_body"})
        except TimeoutError:
            return self._refuse(408, "body_timeout", _client(request), {
                "error": "body_timeout", "limit_ms": self.settings.body_timeout_ms,
            }, {"Connection": "close"})
        except _BodyMemoryFull:
            return self._refuse(503, "body_memory_full", _client(request), {
                "error": "busy",
                "detail": "too many bodies in memory at once; nothing was kept, please retry",
            }, {"Retry-After": str(MEMORY_RETRY_AFTER_S)})
        if body is None:
            return self._too_large()
        record = RawRecord.received(
            body, source=self.settings.source, account=account,
            content_type=request.headers.get("content-type", ""), remote_addr=_client(request),
        )
        try:
            stored = await self.services.publisher.publish(record)
        except SpoolError as error:
            self.metrics.rejected.labels(type(error).__name__).inc()
            logger.error("webhook %s NOT stored (Kafka unavailable, spool refused): %s",
                         record.receipt_id, error)
            return json_response(503, {
                "error": "unavailable",
                "detail": "neither Kafka nor the local spool could store the body; nothing "
                          "was kept, please retry",
            }, {"Retry-After": "5"})
        self.metrics.ack_seconds.observe(time.perf_counter() - started)
        self.metrics.body_bytes.observe(len(body))
        return json_response(200, {"status": "accepted", "receipt_id": record.receipt_id,
                                   "stored_in": stored})

    async def _read_body(self, request: Request, hold: BodyHold) -> bytes | None:
        """The body, or None when it is over the limit.

        Keeps at most the limit in memory, held in the process's body memory budget (by
        `Content-Length` up front, else as it arrives; _BodyMemoryFull when it is spent). An
        oversized body is read on and discarded, never kept, up to DISCARD_CAP_BYTES more, so
        the sender reliably sees the 413 instead of a reset connection; past that the
        connection is closed without reading further.
        """
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        size_declared = int(declared) if declared.isdigit() else None
        if size_declared is not None and size_declared > limit + DISCARD_CAP_BYTES:
            return None
        keep = size_declared is None or size_declared <= limit
        if keep and not hold.grow_to(size_declared or 0):
            raise _BodyMemoryFull
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit + DISCARD_CAP_BYTES:
                return None
            if keep and size <= limit:
                if not hold.grow_to(size):
                    raise _BodyMemoryFull
                chunks.append(chunk)
        return None if size > limit else b"".join(chunks)

    def _refuse(self, status: int, reason: str, client: str, content: dict[str, Any],
                headers: dict[str, str]) -> Response:
        """A refusal that stored nothing: counted by reason, summed up in the periodic log."""
        self.metrics.rejected.labels(reason).inc()
        self.limits.summary.record(reason, client)
        return json_response(status, content, headers)

    def _too_large(self) -> Response:
        self.metrics.rejected.labels("too_large").inc()
        return json_response(413, {"error": "payload_too_large",
                                   "limit_bytes": self.settings.max_body_bytes},
                             {"Connection": "close"})

    async def healthz(self, request: Request) -> Response:
        return json_response(200, {"status": "alive"})

    async def readyz(self, request: Request) -> Response:
        """200 while a body can be stored (Kafka or the spool), else 503. `status` is `ok`,
        or `degraded` (still 200: bodies are kept) with the `reason`."""
        spools, publisher, drainer = (self.services.spools, self.services.publisher,
                                      self.services.drainer)
        kafka_ok = publisher.available
        spool_ok = spools.writable()
        ready = kafka_ok or spool_ok
        oldest_s = spools.oldest_age_s()
        reasons = [publisher.problem() or ""]
        if oldest_s is not None:
            reasons.append(f"{spools.depth} bodies wait in the spool, the oldest for "
                           f"{oldest_s:.0f}s")
        if drainer.stalled_for_s() >= drainer.stall_timeout_s:
            reasons.append(f"the drain moved nothing for {drainer.stalled_for_s():.0f}s")
        if not spool_ok:
            reasons.append("the spool is full or unwritable")
        reason = "; ".join(r for r in reasons if r)
        spools.refresh()
        return json_response(200 if ready else 503, {
            "ready": ready,
            "status": "unavailable" if not ready else "degraded" if reason else "ok",
            "reason": reason,
            "kafka": "available" if kafka_ok else "unavailable",
            "spool": "writable" if spool_ok else "full or unwritable",
            "spool_depth": spools.depth,
            "spool_bytes": spools.bytes,
            "spool_oldest_age_s": None if oldest_s is None else round(oldest_s, 3),
            "quarantined": drainer.quarantined,
        })

    async def metrics_endpoint(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, 200, media_type=content_type)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def create_app(settings: IngestSettings | None = None,
               kafka: KafkaSettings | None = None) -> Starlette:
    """The ASGI app factory (`uvicorn --factory ingest.app:create_app`)."""
    if not logging.getLogger().handlers:
        # A uvicorn worker process started by spawn: configure logging like the CLI did.
        configure_logging(os.environ.get("QIKFLOW_LOG_LEVEL", "INFO"))
    release_large_blocks_to_os()
    ingest = IngestApp(settings or IngestSettings(), kafka or KafkaSettings())
    routes = [
        Route("/webhooks/qikchat", ingest.receive, methods=["POST"]),
        Route("/webhooks/qikchat/{account}", ingest.receive, methods=["POST"]),
        Route("/healthz", ingest.healthz, methods=["GET"]),
        Route("/readyz", ingest.readyz, methods=["GET"]),
        Route("/metrics", ingest.metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=_sharing_limits(ingest),
                    exception_handlers=EXCEPTION_HANDLERS)
    # A trailing slash is a 404 like any unknown path, not a redirect built from `Host`.
    app.router.redirect_slashes = False
    return app


def _sharing_limits(ingest: IngestApp) -> Lifespan[Starlette]:
    """The ingest's lifespan, handing its ConnectionLimits to uvicorn's HTTP protocol.

    The lifespan state is the one object uvicorn gives both the app and every connection
    (`app_state` of ingest.protocol.IngestHttpProtocol).
    """
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with ingest.lifespan(app):
            yield {LIMITS_STATE_KEY: ingest.limits}
        # Whatever was refused since the last summary, said before the process ends.
        ingest.auth_refusals.flush()
        ingest.limits.summary.flush()

    return lifespan
