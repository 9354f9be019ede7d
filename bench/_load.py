"""HTTP load generator for the benchmarks: fixed concurrency, keep-alive, its own process.

Prints one JSON object: requests, seconds, requests/s, latency percentiles, non-200 count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def run(url: str, concurrency: int, duration_s: float, warmup_s: float,
              body: bytes, user: str, password: str) -> dict[str, float]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    non_200 = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        start = time.perf_counter()
        measure_from = start + warmup_s
        stop_at = measure_from + duration_s

        async def worker() -> None:
            nonlocal non_200
            while True:
                began = time.perf_counter()
                if began >= stop_at:
                    return
                async with session.post(url, data=body) as response:
                    await response.read()
                    status = response.status
                ended = time.perf_counter()
                if began >= measure_from:
                    latencies.append(ended - began)
                    if status != 200:
                        non_200 += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": duration_s,
        "rps": len(latencies) / duration_s,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "non_200": non_200,
    }


def load(url: str, concurrency: int, duration_s: float, body_file: Path) -> dict[str, float]:
    """Run this generator in its own process against `url`; return its figures."""
    output = subprocess.run(
        [sys.executable, "-m", "bench._load", "--url", url, "--concurrency", str(concurrency),
         "--duration", str(duration_s), "--body-file", str(body_file)],
        capture_output=True, text=True, check=True,
    ).stdout
    result: dict[str, float] = orjson.loads(output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench")
    args = parser.parse_args()
    with open(args.body_file, "rb") as file:
        body = file.read()
    result = asyncio.run(run(args.url, args.concurrency, args.duration, args.warmup, body,
                             args.user, args.password))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
