"""POSTs planned webhooks to ingest on their schedule, as Qikchat would, and records answers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from qikflow.simulate._progress import Progress
from qikflow.simulate.plan import PlannedWebhook

logger = logging.getLogger(__name__)

# Qikchat gives up on a webhook after 2 seconds; slower answers are counted.
QIKCHAT_TIMEOUT_S = 2.0
WEBHOOK_PATH = "/webhooks/qikchat"


def webhook_url(url: str, account: str | None) -> str:
    """`url` as given, `/webhooks/qikchat` added when it has no path, `/<account>` appended."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") or WEBHOOK_PATH
    if account:
        path = f"{path}/{account}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


# An idle connection is given up before the ingest closes it (ingest.server.KEEP_ALIVE_S,
# 5 s). With httpx's default, also 5 s, a request could go out on a connection at the
# moment the server closed it, and get no answer: the usual HTTP/1.1 keep-alive race.
KEEPALIVE_EXPIRY_S = 3.0

@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer to one planned webhook."""

    index: int
    status_code: int  # 0 when no answer came (connection error, timeout)
    latency_s: float
    started_s: float  # when the request began, seconds after the run started
    lag_s: float  # how far behind its planned time it began
    completion: int  # order in which answers came back (0 first)
    receipt_id: str | None
    error: str | None = None


@dataclass
class SendReport:
    """Every result of a run, by webhook index."""

    results: list[SendResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    ok: int = 0  # running count of 200s, for the progress bar

    def acked(self) -> set[int]:
        """Indexes of webhooks that got 200: only those must reach the pipeline."""
        return {r.index for r in self.results if r.status_code == 200}

    def status_counts(self) -> Counter[int]:
        return Counter(r.status_code for r in self.results)

    @property
    def not_ok(self) -> int:
        return sum(1 for r in self.results if r.status_code != 200)

    def latency_quantiles(self) -> dict[str, float]:
        latencies = sorted(r.latency_s for r in self.results)
        if not latencies:
            return {}
        def at(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))]
        return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": latencies[-1]}

    def summary(self) -> str:
        q = self.latency_quantiles()
        slow = sum(1 for r in self.results if r.latency_s > QIKCHAT_TIMEOUT_S)
        lag = max((r.lag_s for r in self.results), default=0.0)
        codes = ", ".join(f"{code or 'no answer'}: {n}"
                          for code, n in sorted(self.status_counts().items()))
        rate = len(self.results) / self.elapsed_s if self.elapsed_s else 0.0
        return (f"sent {len(self.results)} in {self.elapsed_s:.1f}s ({rate:.0f}/s); "
                f"answers {codes or 'none'}; latency p50 {q.get('p50', 0) * 1000:.1f} ms, "
                f"p99 {q.get('p99', 0) * 1000:.1f} ms, max {q.get('max', 0) * 1000:.1f} ms; "
                f"{slow} over Qikchat's {QIKCHAT_TIMEOUT_S:.0f}s; worst schedule lag {lag:.2f}s")


def _receipt_id(response: httpx.Response) -> str | None:
    try:
        content = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    receipt = content.get("receipt_id") if isinstance(content, dict) else None
    return receipt if isinstance(receipt, str) else None


class WebhookSender:
    """A fixed number of concurrent senders fed by one pacer that follows the schedule."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        concurrency: int = 64,
        timeout_s: float = 10.0,
        progress: Progress | None = None,
    ) -> None:
        self.url = url
        self.auth = (user, password or "") if user is not None else None
        self.concurrency = max(1, concurrency)
        self.timeout_s = timeout_s
        self.progress = progress

    async def run(self, webhooks: Iterable[PlannedWebhook]) -> SendReport:
        """Send every webhook at its `send_at_s` (or as soon after as a sender is free)."""
        queue: asyncio.Queue[PlannedWebhook | None] = asyncio.Queue(self.concurrency)
        report = SendReport()
        started = time.monotonic()
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency,
                              keepalive_expiry=KEEPALIVE_EXPIRY_S)
        async with httpx.AsyncClient(auth=self.auth, limits=limits,
                                     timeout=self.timeout_s) as client:
            workers = [asyncio.create_task(self._work(client, queue, report, started))
                       for _ in range(self.concurrency)]
            try:
                for webhook in webhooks:
                    delay = started + webhook.send_at_s - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await queue.put(webhook)
                for _ in workers:
                    await queue.put(None)
                await asyncio.gather(*workers)
            finally:
                for worker in workers:
                    worker.cancel()
        report.elapsed_s = time.monotonic() - started
        report.results.sort(key=lambda r: r.index)
        if self.progress is not None:
            self.progress.close(len(report.results), report.ok, report.not_ok)
        return report

    async def _work(self, client: httpx.AsyncClient, queue: asyncio.Queue[PlannedWebhook | None],
                    report: SendReport, started: float) -> None:
        while (webhook := await queue.get()) is not None:
            began = time.monotonic()
            status, receipt, error = 0, None, None
            try:
                response = await client.post(
                    webhook_url(self.url, webhook.account), content=webhook.body,
                    headers={"content-type": "application/json"})
                status, receipt = response.status_code, _receipt_id(response)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                logger.debug("webhook %d got no answer: %s", webhook.index, error)
            finished = time.monotonic()
            report.results.append(SendResult(
                index=webhook.index, status_code=status, latency_s=finished - began,
                started_s=began - started, lag_s=max(0.0, began - started - webhook.send_at_s),
                completion=len(report.results), receipt_id=receipt, error=error))
            report.ok += status == 200
            if self.progress is not None:
                done = len(report.results)
                self.progress.update(done, report.ok, done - report.ok)
