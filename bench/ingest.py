"""bench/ingest: the real ingest (Kafka acks=all) against two baselines, same stack, one run.

(a) a no-op Starlette endpoint, (b) the ingest, (c) a hand-written FastAPI endpoint that
awaits aiokafka's `send_and_wait` with acks=all, served by uvicorn as users run it, and
(d) the leanest hand-written Starlette endpoint on the ingest's own uvicorn settings
(bench/_handwritten.py). (a), (b) and (d) are served by `ingest.server.serve` (uvicorn,
uvloop, httptools); every one is loaded by `wrk` (bench/_wrk.py). Prints each endpoint's
figures, the CPU the server and wrk used, and the ratios.

Usage: `make bench`, or with a broker running:
    QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092 .venv/bin/python -m bench.ingest [--workers N]
Where the ingest's time goes (py-spy, in .venv but not a dependency of the project):
    ... python -m bench.ingest --profile bench/results/ingest.folded [--native]
Targets: (b)/(a) >= 0.6 with p99 < 50 ms and no failed request; (b)/(c) >= 1.5. The
figures mean something only if the no-op reaches at least 1.5x the ingest under the same
generator: the run says so, or says that it did not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import _profile, _wrk
from bench._cpu import CpuMeter
from bench._handwritten import TOPIC_SUFFIX
from bench._kafka import delete_topics
from bench._report import print_table, write_results
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import ensure_topics, specs_for
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
USER, PASSWORD = "bench", "bench"
TUNED, UVICORN_DEFAULTS = "ingest.server.serve", "uvicorn defaults"
# name -> (app factory, how it is served: the ingest's tuned settings or uvicorn's own)
ENDPOINTS = {
    "(a) no-op": ("bench._noop:create_app", TUNED),
    "(b) ingest -> Kafka": ("ingest.app:create_app", TUNED),
    "(c) hand-written FastAPI": ("bench._handwritten:create_fastapi_app", UVICORN_DEFAULTS),
    "(d) hand-written, lean": ("bench._handwritten:create_app", TUNED),
}
WARMUP_S = 2.0
# Under this no-op/ingest ratio the generator (or the machine) may be what limits the
# no-op, and (b)/(a) then flatters the ingest.
MIN_HEADROOM = 1.5


def wrk_setup(scratch: Path, prefix: str) -> tuple[Path, dict[str, str]]:
    """The wrk script that posts SAMPLE_BODY with Basic Auth, written into `scratch`, and
    the servers' environment for topic prefix `prefix` (spool under `scratch`)."""
    script = scratch / "post.lua"
    script.write_text(_wrk.script(SAMPLE_BODY, USER, PASSWORD))
    return script, {"QIKFLOW_WEBHOOK_USERS": f"{USER}:{PASSWORD}",
                    "QIKFLOW_TOPIC_PREFIX": prefix, "QIKFLOW_SPOOL_DIR": str(scratch / "spool")}


def start_server(app: str, port: int, workers: int, env: dict[str, str], *,
                 served_by: str = TUNED) -> subprocess.Popen[bytes]:
    if served_by == UVICORN_DEFAULTS:
        code = ("from bench._handwritten import serve_as_users_do; "
                f"serve_as_users_do({app!r}, {port}, {workers})")
    else:
        code = ("from ingest.server import serve; "
                f"serve('127.0.0.1', {port}, {workers}, app={app!r}, log_level='warning')")
    process = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/webhooks/qikchat", content=b"{}",
                       auth=(USER, PASSWORD), timeout=2)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{app} did not start")


def measure(app: str, args: argparse.Namespace, script: Path, env: dict[str, str],
            profile: Path | None = None, native: bool = False, *,
            served_by: str = TUNED) -> dict[str, Any]:
    """One endpoint: a warm-up, then `args.duration` seconds of wrk with the CPU metered."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/qikchat"
    server = start_server(app, port, args.workers, env, served_by=served_by)
    try:
        _wrk.run(url, script, connections=args.connections, threads=args.threads,
                 duration_s=WARMUP_S)
        meter = CpuMeter({"server": server.pid})
        spy = (None if profile is None
               else _profile.attach(server.pid, args.duration, profile, native=native))
        meter.start()
        result = _wrk.run(url, script, connections=args.connections, threads=args.threads,
                          duration_s=args.duration)
        cpu = meter.stop()
        if spy is not None and spy.wait(60):
            raise RuntimeError(f"py-spy failed (exit {spy.returncode})")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    return {
        "rps": result.rps, "requests": result.requests, "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms, "max_ms": result.max_ms, "failed": result.failed,
        "status_errors": result.status_errors, "socket_errors": result.socket_errors,
        "server_cores": cpu.cores("server"), "server_cpu_s": cpu.cpu_s["server"],
        # CPU per request holds better than req/s when others share the cores.
        "server_us_per_request": (cpu.cpu_s["server"] / result.requests * 1e6
                                  if result.requests else 0.0),
        "wrk_cores": result.cores, "machine_busy": cpu.machine_busy,
    }


def verdicts(figures: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, float]]:
    """The lines that judge a run, and its ratios."""
    noop, ingest = figures["(a) no-op"], figures["(b) ingest -> Kafka"]
    handwritten, lean = figures["(c) hand-written FastAPI"], figures["(d) hand-written, lean"]
    ratios = {
        "ingest_over_noop": ingest["rps"] / noop["rps"] if noop["rps"] else 0.0,
        "ingest_over_handwritten": (ingest["rps"] / handwritten["rps"]
                                    if handwritten["rps"] else 0.0),
        "ingest_over_lean": ingest["rps"] / lean["rps"] if lean["rps"] else 0.0,
        "noop_over_ingest": noop["rps"] / ingest["rps"] if ingest["rps"] else 0.0,
    }
    each = ", ".join(f"{name[:3]} {r['wrk_cores']:.2f}" for name, r in figures.items())
    busiest = max(r["wrk_cores"] for r in figures.values())
    lines = [f"load generator: wrk used at most {busiest:.2f} of a core ({each})"]
    if ratios["noop_over_ingest"] >= MIN_HEADROOM:
        lines.append(f"headroom: the no-op reached {ratios['noop_over_ingest']:.2f}x the "
                     f"ingest (>= {MIN_HEADROOM}x): the generator is not what limits the ingest")
    else:
        lines.append(f"NO HEADROOM: the no-op reached only {ratios['noop_over_ingest']:.2f}x "
                     f"the ingest (< {MIN_HEADROOM}x): the generator or the machine limits "
                     "the no-op, so (b)/(a) overstates the ingest; do not quote it")
    met = (ratios["ingest_over_noop"] >= 0.6 and ingest["p99_ms"] < 50
           and ingest["failed"] == 0)
    lines.append(f"throughput ratio (b)/(a) ingest / no-op: {ratios['ingest_over_noop']:.2f}  "
                 f"(target >= 0.60, p99 < 50 ms, none failed: {'met' if met else 'NOT met'})")
    lines.append(f"throughput ratio (b)/(c) ingest / hand-written FastAPI: "
                 f"{ratios['ingest_over_handwritten']:.2f}  (target >= 1.50: "
                 f"{'met' if ratios['ingest_over_handwritten'] >= 1.5 else 'NOT met'})")
    lines.append(f"throughput ratio (b)/(d) ingest / lean hand-written on the ingest's "
                 f"settings: {ratios['ingest_over_lean']:.2f}  (no target: the most a hand-written "
                 "endpoint gets)")
    return lines, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # Qikchat sends "as many parallel requests as possible": 64 connections at once.
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--profile", type=Path, metavar="FOLDED",
                        help="load the ingest alone with py-spy attached; write its folded "
                        "stacks here and print where the time went")
    parser.add_argument("--native", action="store_true",
                        help="with --profile: C frames too (py-spy stops the server for "
                        "each sample; see bench/_profile.py)")
    args = parser.parse_args()
    if not os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP"):
        sys.exit("set QIKFLOW_KAFKA_BOOTSTRAP (make bench starts a broker and sets it)")
    kafka = KafkaSettings(bootstrap=os.environ["QIKFLOW_KAFKA_BOOTSTRAP"])
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    # A user creates the hand-written endpoint's topic beforehand; sized as the raw topic.
    asyncio.run(ensure_topics(kafka, specs_for(kafka, [prefix + TOPIC_SUFFIX])))
    figures: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            script, env = wrk_setup(Path(scratch), prefix)
            if args.profile is not None:
                profiled = measure(ENDPOINTS["(b) ingest -> Kafka"][0], args, script, env,
                                   args.profile, args.native)
                _profile.report(args.profile, profiled["requests"], profiled["server_cpu_s"])
                print(f"under py-spy: {profiled['rps']:.0f} req/s, server "
                      f"{profiled['server_cores']:.2f} cores")
                return
            for name, (app, served_by) in ENDPOINTS.items():
                figures[name] = measure(app, args, script, env, served_by=served_by)
    finally:
        asyncio.run(delete_topics(kafka, (prefix,)))
    print(f"bench/ingest: wrk, {args.connections} connections, {args.threads} thread(s), "
          f"{args.duration:.0f}s each after {WARMUP_S:.0f}s of warm-up, {args.workers} "
          f"server worker(s), body {len(SAMPLE_BODY)} bytes")
    print_table(
        ["endpoint", "req/s", "p50 ms", "p99 ms", "max ms", "failed", "server cores",
         "server CPU us/req", "wrk cores", "machine busy"],
        [[name, f"{r['rps']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
          f"{r['max_ms']:.1f}", str(r["failed"]), f"{r['server_cores']:.2f}",
          f"{r['server_us_per_request']:.0f}", f"{r['wrk_cores']:.2f}",
          f"{r['machine_busy']:.0%}"]
         for name, r in figures.items()],
    )
    lines, ratios = verdicts(figures)
    for line in lines:
        print(line)
    write_results("ingest", {"endpoints": figures, **ratios,
                             "connections": args.connections, "threads": args.threads,
                             "workers": args.workers})


if __name__ == "__main__":
    main()
