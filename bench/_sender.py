"""bench/e2e's sender: the simulator's pacing and report, with the webhooks POSTed by aiohttp.

`qikflow simulate`'s WebhookSender posts with httpx, whose connection pool (httpcore 1.0)
looks at every connection for every request: with 64 connections it spent 4.8 ms of CPU
per webhook on this machine and topped out near 200 webhooks/s on a whole core, against a
no-op server. Driving bench/e2e at 200 webhooks/s, it used more CPU than any process of the
pipeline. This sender keeps WebhookSender's schedule, queue and SendReport (its `run` is
used as it is) and replaces only the request, with one aiohttp session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import aiohttp
import httpx
import orjson

from qikflow.simulate.plan import PlannedWebhook
from qikflow.simulate.sender import SendReport, SendResult, WebhookSender, webhook_url

HEADERS = {"content-type": "application/json"}


def receipt_of(body: bytes) -> str | None:
    try:
        content = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    receipt = content.get("receipt_id") if isinstance(content, dict) else None
    return receipt if isinstance(receipt, str) else None


class AiohttpSender(WebhookSender):
    """WebhookSender on an aiohttp session (the httpx client its `run` opens stays idle)."""

    _session: aiohttp.ClientSession

    async def run(self, webhooks: Iterable[PlannedWebhook]) -> SendReport:
        auth = aiohttp.BasicAuth(*self.auth) if self.auth is not None else None
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency), auth=auth,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s), headers=HEADERS,
        ) as self._session:
            return await super().run(webhooks)

    async def _work(self, client: httpx.AsyncClient, queue: asyncio.Queue[PlannedWebhook | None],
                    report: SendReport, started: float) -> None:
        while (webhook := await queue.get()) is not None:
            began = time.monotonic()
            status, receipt, error = 0, None, None
            try:
                async with self._session.post(webhook_url(self.url, webhook.account),
                                              data=webhook.body) as response:
                    status, receipt = response.status, receipt_of(await response.read())
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            finished = time.monotonic()
            report.results.append(SendResult(
                index=webhook.index, status_code=status, latency_s=finished - began,
                started_s=began - started, lag_s=max(0.0, began - started - webhook.send_at_s),
                completion=len(report.results), receipt_id=receipt, error=error))
            report.ok += status == 200
