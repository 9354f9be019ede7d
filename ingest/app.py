"""The ingest ASGI app: authenticate, bound the size, store the exact bytes, answer 200.

It never parses a body. Every answer is JSON; see docs/ingest.md for the HTTP contract.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Lifespan, Receive, Scope, Send

from ingest._malloc import release_large_blocks_to_os
from ingest.answers import EXCEPTION_HANDLERS, json_response
from ingest.auth import Credentials
from ingest.drainer import SpoolDrainer
from ingest.errors import RawTopicTooSmallError
from ingest.limits import LIMITS_STATE_KEY, BodyMemoryBudget, ConnectionLimits
from ingest.metrics import IngestMetrics
from ingest.publisher import RawPublisher
from ingest.quarantine import Quarantine
from ingest.refusals import RefusalSummary
from ingest.settings import IngestSettings
from ingest.spools import Spools
from ingest.webhook import PATH, WebhookEndpoint, webhook_account
from qikflow._logging import configure_logging
from qikflow.config import KafkaSettings
from qikflow.gc_tuning import tune_gc

logger = logging.getLogger(__name__)

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
        tune_gc()  # start-up is over: what it made need not be scanned again
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

    @property
    def publisher(self) -> RawPublisher:
        return self.services.publisher

    # -- endpoints ---------------------------------------------------------

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


class IngestStarlette(Starlette):
    """The ingest's Starlette app, which hands webhook POSTs straight to their endpoint,
    before its middleware stack (ingest/webhook.py says why); all else it serves itself."""

    def __init__(self, webhook: WebhookEndpoint, **options: Any) -> None:
        super().__init__(**options)
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        account = webhook_account(scope)
        if account is None:
            await super().__call__(scope, receive, send)
        else:
            await self.webhook.handle(scope, receive, send, account)


def create_app(settings: IngestSettings | None = None,
               kafka: KafkaSettings | None = None) -> Starlette:
    """The ASGI app factory (`uvicorn --factory ingest.app:create_app`)."""
    if not logging.getLogger().handlers:
        # A uvicorn worker process started by spawn: configure logging like the CLI did.
        configure_logging(os.environ.get("QIKFLOW_LOG_LEVEL", "INFO"))
    release_large_blocks_to_os()
    ingest = IngestApp(settings or IngestSettings(), kafka or KafkaSettings())
    webhook = WebhookEndpoint(ingest)
    routes = [
        Route(PATH, webhook, methods=["POST"]),
        Route(PATH + "/{account}", webhook, methods=["POST"]),
        Route("/healthz", ingest.healthz, methods=["GET"]),
        Route("/readyz", ingest.readyz, methods=["GET"]),
        Route("/metrics", ingest.metrics_endpoint, methods=["GET"]),
    ]
    app = IngestStarlette(webhook, routes=routes, lifespan=_sharing_limits(ingest),
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
