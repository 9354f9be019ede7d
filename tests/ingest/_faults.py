"""Helpers of the ingest fault tests: concurrent senders, readiness, log reading."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.ingest._server import IngestProcess

AUTH = ("qikchat", "s3cret")


@dataclass(frozen=True)
class Answer:
    body: bytes
    status: int  # 0: no answer (transport error)
    seconds: float
    stored_in: str


async def post_all(url: str, bodies: list[bytes], concurrency: int = 20,
                   headers: dict[str, str] | None = None,
                   progress: list[Answer] | None = None) -> list[Answer]:
    """POST every body; return what each got.

    `progress`, when given, receives each answer as it arrives, so a test can act mid-load.
    """
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, auth=AUTH, timeout=30) as client:
        async def one(body: bytes) -> Answer:
            async with semaphore:
                started = time.perf_counter()
                try:
                    response = await client.post("/webhooks/qikchat", content=body,
                                                 headers=headers)
                except httpx.TransportError:
                    answer = Answer(body, 0, time.perf_counter() - started, "")
                else:
                    stored = response.json().get("stored_in", "") if response.content else ""
                    answer = Answer(body, response.status_code,
                                    time.perf_counter() - started, stored)
                if progress is not None:
                    progress.append(answer)
                return answer
        return await asyncio.gather(*(one(b) for b in bodies))


def ready(server: IngestProcess) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{server.url}/readyz", timeout=5).json()
    return answer


def lines(server: IngestProcess, text: str) -> list[str]:
    return [line for line in server.log().splitlines() if text in line]
