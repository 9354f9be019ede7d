"""bench/ingest: the real ingest (Kafka acks=all) against a no-op endpoint, same stack, one run.

Usage: `make bench`, or with a broker running:
    QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092 .venv/bin/python -m bench.ingest [--workers N]
Target: (b)/(a) >= 0.6 of the no-op throughput, p99 < 50 ms, no non-200.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from bench._report import print_table, write_results
from qikflow.local._process import free_port

SAMPLE_BODY = orjson.dumps({
    "event": "whatsapp:message:in",
    "payload": {
        "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0E0RjYxQzE2QjlBRjE1QjM4QjkA",
        "name": "whatsapp",
        "contacts": [{"profile": {"name": "Asha Rao"}, "to": "+919876543210"}],
        "message": {
            "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0E0RjYxQzE2QjlBRjE1QjM4QjkA",
            "from": "918041234567", "type": "text", "timestamp": "2026-11-20T09:15:02.412Z",
            "text": {"body": "Is my order #4411 shipped? Please check, thanks 🙏"},
        },
    },
})


def start_server(app: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = (
        "import sys; from ingest.server import serve; "
        f"serve('127.0.0.1', {port}, {workers}, app={app!r}, log_level='warning')"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/webhooks/qikchat", content=b"{}",
                       auth=("bench", "bench"), timeout=2)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{app} did not start")


def load(url: str, concurrency: int, duration_s: float, body_file: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench._load", "--url", url, "--concurrency", str(concurrency),
         "--duration", str(duration_s), "--body-file", str(body_file)],
        capture_output=True, text=True, check=True,
    ).stdout
    result: dict[str, float] = orjson.loads(output)
    return result


def measure(app: str, workers: int, concurrency: int, duration_s: float, body_file: Path,
            env: dict[str, str]) -> dict[str, float]:
    port = free_port()
    server = start_server(app, port, workers, env)
    try:
        return load(f"http://127.0.0.1:{port}/webhooks/qikchat", concurrency, duration_s,
                    body_file)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # Qikchat sends "as many parallel requests as possible": 64 in flight at once.
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if not os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP"):
        sys.exit("set QIKFLOW_KAFKA_BOOTSTRAP (make bench starts a broker and sets it)")
    with tempfile.TemporaryDirectory() as scratch:
        body_file = Path(scratch) / "body.json"
        body_file.write_bytes(SAMPLE_BODY)
        env = {
            "QIKFLOW_WEBHOOK_USERS": "bench:bench",
            "QIKFLOW_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
            "QIKFLOW_SPOOL_DIR": str(Path(scratch) / "spool"),
        }
        noop = measure("bench._noop:create_app", args.workers, args.concurrency,
                       args.duration, body_file, env)
        ingest = measure("ingest.app:create_app", args.workers, args.concurrency,
                         args.duration, body_file, env)
    ratio = ingest["rps"] / noop["rps"] if noop["rps"] else 0.0
    print(f"bench/ingest: concurrency {args.concurrency}, {args.duration:.0f}s each, "
          f"{args.workers} worker(s), body {len(SAMPLE_BODY)} bytes")
    print_table(
        ["endpoint", "req/s", "p50 ms", "p99 ms", "max ms", "non-200"],
        [[name, f"{r['rps']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
          f"{r['max_ms']:.1f}", str(int(r["non_200"]))]
         for name, r in (("(a) no-op", noop), ("(b) ingest -> Kafka", ingest))],
    )
    verdict = ratio >= 0.6 and ingest["p99_ms"] < 50 and ingest["non_200"] == 0
    print(f"throughput ratio (b)/(a): {ratio:.2f}  (target >= 0.60, p99 < 50 ms, no non-200: "
          f"{'met' if verdict else 'NOT met'})")
    write_results("ingest", {"noop": noop, "ingest": ingest, "ratio": ratio,
                             "concurrency": args.concurrency, "workers": args.workers})


if __name__ == "__main__":
    main()
