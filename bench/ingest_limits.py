"""bench/ingest_limits: the ingest's memory and other clients' answers while bad clients push.

Three phases against one real ingest (every limit at its default, one worker, Kafka acks):
1. burst: 64 connections post 1,000,000-byte bodies for 10 s (bench/_load.py, its own
   process): answers, latency, resident memory at its peak and once the ingest is idle again.
2. header flood: one connection streams a 128 MiB header while another client posts small
   webhooks: what the ingest took before it hung up, the other client's slowest answer.
3. slow heads: 171 connections trickle their heads (what exhausted `ulimit -n 192` in issue
   10) while another client posts webhooks: how they ended, the other client's slowest answer.

Usage, with a broker running:
    QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092 .venv/bin/python -m bench.ingest_limits
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench._kafka import delete_topics
from bench._load import load
from bench._report import print_table, write_results
from bench.ingest import start_server
from qikflow.config import KafkaSettings
from qikflow.local._process import free_port

BODY_BYTES = 1_000_000  # within the broker's default record limit
FLOOD_BYTES = 128 * 1024 * 1024
SLOW_HEADS = 171
AUTH = ("bench", "bench")


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakMemory:
    """Samples a process's resident memory every 50 ms in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, resident_mib(self.pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def settle(url: str, timeout_s: float = 120) -> None:
    """Wait until the spool is drained and no body is held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready = httpx.get(f"{url}/readyz", timeout=5).json()
        if not ready.get("spool_depth"):
            break
        time.sleep(0.5)
    time.sleep(2)  # the last answers' buffers go


def statuses(url: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("qikflow_ingest_requests_total{"):
            name, _, value = line.rpartition(" ")
            counts[name.split('"')[1]] = float(value)
    return counts


async def others_while(url: str, bad: asyncio.Future[Any]) -> tuple[int, float]:
    """Post small webhooks until `bad` is done: (how many answered 200, slowest seconds)."""
    answered, slowest = 0, 0.0
    async with httpx.AsyncClient(base_url=url, auth=AUTH, timeout=30) as client:
        while not bad.done():
            began = time.perf_counter()
            if (await client.post("/webhooks/qikchat", content=b"{}")).status_code == 200:
                answered += 1
            slowest = max(slowest, time.perf_counter() - began)
            await asyncio.sleep(0.01)
    return answered, slowest


async def header_flood(url: str) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def flood() -> tuple[int, float]:
        """(bytes sent before the ingest hung up, seconds until it did; -1: it never did)."""
        began = time.perf_counter()
        writer.write(b"POST /webhooks/qikchat HTTP/1.1\r\nHost: ingest\r\nX-Flood: ")
        chunk, sent = b"f" * (1 << 20), 0
        try:
            while sent < FLOOD_BYTES:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
            async with asyncio.timeout(10):  # the head never ends: does the ingest hang up?
                await reader.read()
        except (ConnectionError, OSError):
            pass
        except TimeoutError:
            return sent, -1.0
        return sent, time.perf_counter() - began

    flooding = asyncio.ensure_future(flood())
    answered, slowest = await others_while(url, flooding)
    writer.close()
    sent, closed_after_s = await flooding
    return {"flood_sent_mib": sent / (1 << 20), "closed_after_s": closed_after_s,
            "others_200": answered, "others_max_ms": slowest * 1000}


async def slow_heads(url: str) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    request = b"POST /webhooks/qikchat HTTP/1.1\r\nHost: ingest\r\nContent-Length: 2\r\n\r\n{}"

    async def one() -> str:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            return "refused at connect"

        async def trickle() -> None:
            try:
                for byte in request:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)
            except (ConnectionError, OSError):
                pass  # the ingest hung up: what it answered is read below

        trickling = asyncio.ensure_future(trickle())
        try:
            async with asyncio.timeout(30):
                answer = await reader.read()
            outcome = answer.split(b"\r\n", 1)[0].decode() or "closed, no answer"
        except (ConnectionError, OSError):
            outcome = "reset"
        except TimeoutError:
            outcome = "still open after 30 s"
        trickling.cancel()
        writer.close()
        return outcome

    slow = asyncio.ensure_future(asyncio.gather(*(one() for _ in range(SLOW_HEADS))))
    answered, slowest = await others_while(url, slow)
    outcomes: dict[str, float] = {}
    for outcome in await slow:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"others_200": answered, "others_max_ms": slowest * 1000, **outcomes}


def main() -> None:
    if not os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP"):
        sys.exit("set QIKFLOW_KAFKA_BOOTSTRAP (make bench starts a broker and sets it)")
    with tempfile.TemporaryDirectory() as scratch:
        body_file = Path(scratch) / "body.bin"
        body_file.write_bytes(os.urandom(BODY_BYTES))
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        env = {"QIKFLOW_WEBHOOK_USERS": "bench:bench", "QIKFLOW_LOG_LEVEL": "WARNING",
               "QIKFLOW_TOPIC_PREFIX": prefix, "QIKFLOW_SPOOL_DIR": str(Path(scratch) / "spool")}
        port = free_port()
        server = start_server("ingest.app:create_app", port, 1, env)
        url = f"http://127.0.0.1:{port}"
        try:
            idle = resident_mib(server.pid)
            with PeakMemory(server.pid) as peak:
                burst = load(f"{url}/webhooks/qikchat", 64, 10.0, body_file)
            settle(url)
            after = resident_mib(server.pid)
            flood = asyncio.run(header_flood(url))
            flood["resident_mib"] = resident_mib(server.pid)
            heads = asyncio.run(slow_heads(url))
            answers = statuses(url)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
            kafka = KafkaSettings(bootstrap=os.environ["QIKFLOW_KAFKA_BOOTSTRAP"])
            asyncio.run(delete_topics(kafka, (prefix,)))
    print(f"bench/ingest_limits: 64 connections x {BODY_BYTES} B bodies for 10 s, then a "
          f"{FLOOD_BYTES >> 20} MiB header, then {SLOW_HEADS} trickled heads")
    print_table(
        ["phase", "figures"],
        [["burst", f"{burst['rps']:.0f} req/s, p50 {burst['p50_ms']:.0f} ms, p99 "
                   f"{burst['p99_ms']:.0f} ms, max {burst['max_ms']:.0f} ms, non-200 "
                   f"{burst['non_200']:.0f}"],
         ["memory", f"idle {idle:.0f} MiB, peak {peak.peak:.0f} MiB, idle again "
                    f"{after:.0f} MiB"],
         ["header flood", ", ".join(f"{k} {v:.1f}" for k, v in flood.items())],
         ["slow heads", ", ".join(f"{k}: {v:.0f}" for k, v in heads.items())],
         ["answers", ", ".join(f"{k}: {v:.0f}" for k, v in sorted(answers.items()))]],
    )
    write_results("ingest_limits", {"burst": burst, "resident_mib": {
        "idle": idle, "peak": peak.peak, "after": after}, "header_flood": flood,
        "slow_heads": heads, "answers": answers})


if __name__ == "__main__":
    main()
