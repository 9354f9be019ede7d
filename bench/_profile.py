"""Where a server's CPU goes: py-spy attached to it, and a summary of the folded stacks.

py-spy is not a dependency of the project (install it into .venv to profile). The summary
turns sample shares into microseconds per request: the server's CPU seconds over the
profiled window, divided by the requests wrk completed in it, shared out by samples.

    .venv/bin/python -m bench._profile FOLDED REQUESTS SERVER_CPU_S   # summarise again
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench._report import print_table

RATE_HZ = 200
# "name (path:line)" for Python frames; native ones are "name (library)" or "0x... (lib)".
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<where>[^()]*?)(?::\d+)?\)$")


AIOKAFKA = "aiokafka sender (produce requests, responses, connection)"
# aiokafka's work under the producer's send(), which the ingest calls once per request.
AIOKAFKA_SEND = "aiokafka send(), per request (partition, batch append, future)"
_SEND = re.compile(r"^AIOKafkaProducer\.send ")
# Where a sample's time goes: the first rule that matches a frame, from the running frame
# up to the root, so the most specific wins (the collector run inside a handler counts as
# the collector, a write() inside uvicorn's send as writing the answer).
CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern)) for name, pattern in (
        ("garbage collector", r"^gc_collect_main "),
        ("Prometheus metrics", r"[(/]prometheus_client/"),
        (AIOKAFKA, r"[(/]aiokafka/"),
        ("asyncio timeouts and waits (asyncio.timeout, asyncio.wait)",
         r"asyncio/(timeouts|tasks)\.py"),
        ("writing the answer (uvicorn send, write syscall)", r"^RequestResponseCycle\.send "),
        ("ingest: raw record (receipt id, record headers)", r"\(ingest/record\.py"),
        ("ingest: Basic Auth", r"\(ingest/auth\.py|basic_auth\.py"),
        ("ingest: publisher (the rest of publish and send)", r"\(ingest/publisher\.py"),
        ("ingest: answer JSON", r"\(ingest/answers\.py"),
        ("ingest: body read, limits, handler", r"\(ingest/(app|limits)\.py"),
        ("HTTP parsing (httptools, the ingest's protocol)",
         r"\(ingest/protocol\.py|httptools_impl\.py|parser\.c|/httptools/"),
        ("Starlette and ASGI (routing, middleware, Request)",
         r"[(/]starlette/|proxy_headers\.py"),
    )
)
OTHER = "event loop and the rest (uvloop, task steps, interpreter)"
# A thread blocked on a lock (an idle executor worker) is waiting, not working; with
# --native py-spy can take it for a running thread.
_IDLE = "PyThread_acquire_lock_timed"


def attach(pid: int, duration_s: float, output: Path, *,
           native: bool = False) -> subprocess.Popen[bytes]:
    """Start py-spy recording `pid` for `duration_s` into `output` (folded stacks).

    By default py-spy reads the Python stacks without stopping the process. `native` adds
    the C frames (uvloop, httptools, the interpreter, libc), but py-spy must then stop
    the process for every sample: it serves about half as many requests, and the stops
    land in system calls, so calls such as getpid() and write() take more samples than
    their CPU (getpid() costs 0.2 us here, yet took 8-12 % of native samples).
    """
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy "
                         "(it is not a dependency of the project)")
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--rate", str(RATE_HZ),
         "--duration", str(max(1, round(duration_s))), "--format", "raw",
         "--output", str(output), "--native" if native else "--nonblocking"],
        stdout=subprocess.DEVNULL,
    )


def parse_folded(text: str) -> list[tuple[list[str], int]]:
    """(frames from the root down, samples) for each line of folded stacks."""
    stacks: list[tuple[list[str], int]] = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def function(frame: str) -> str:
    """A frame without its line number: every line of one function counts as one."""
    match = _FRAME.match(frame)
    return f"{match['name']} ({match['where']})" if match else frame


def package(frame: str) -> str:
    """The package a frame's code belongs to: `aiokafka`, `asyncio`, `ingest`, `libc.so.6`.

    py-spy names a module's file from its sys.path entry (`aiokafka/conn.py`,
    `asyncio/tasks.py`), and a native frame by its library or C source (`libc.so.6`).
    """
    match = _FRAME.match(frame)
    where = match["where"] if match else frame
    if "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    else:
        stdlib = re.search(r"/lib/python3\.\d+/(.+)", where)
        where = stdlib[1] if stdlib else where
    return where.lstrip("/").split("/", 1)[0].removesuffix(".py")


def category(frames: list[str]) -> str:
    """The CATEGORIES name of one stack (root first), or OTHER."""
    for frame in reversed(frames):
        for name, pattern in CATEGORIES:
            if pattern.search(frame):
                if name == AIOKAFKA and any(_SEND.search(f) for f in frames):
                    return AIOKAFKA_SEND
                return name
    return OTHER


def busy(stacks: list[tuple[list[str], int]]) -> list[tuple[list[str], int]]:
    """`stacks` without the samples of threads waiting on a lock."""
    return [(frames, count) for frames, count in stacks
            if not any(_IDLE in frame for frame in frames)]


def shares(stacks: list[tuple[list[str], int]]) -> tuple[Counter[str], Counter[str],
                                                         Counter[str], int]:
    """(self samples by package, self by function, inclusive by function, all samples)."""
    own_package: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in stacks:
        total += count
        own_package[package(frames[-1])] += count
        own[function(frames[-1])] += count
        for name in {function(frame) for frame in frames}:
            inclusive[name] += count
    return own_package, own, inclusive, total


def report(path: Path, requests: int, server_cpu_s: float, top: int = 25) -> None:
    """Print the summary of the folded stacks in `path`."""
    stacks = parse_folded(path.read_text())
    working = busy(stacks)
    own_package, own, inclusive, total = shares(working)
    categories: Counter[str] = Counter()
    for frames, count in working:
        categories[category(frames)] += count
    per_request_us = server_cpu_s / requests * 1e6 if requests else 0.0
    idle = sum(count for _, count in stacks) - total
    print(f"profile {path}: {total} samples ({idle} of idle threads left out); the server "
          f"used {server_cpu_s:.1f} CPU s for {requests} requests: {per_request_us:.0f} us "
          "of CPU per request")

    def rows(counter: Counter[str]) -> list[list[str]]:
        return [[name[:110], f"{n / total:.1%}", f"{n / total * per_request_us:.1f}"]
                for name, n in counter.most_common(top)]

    if not total:
        return
    print("\nwhere the time goes")
    print_table(["part", "share", "us/request"], rows(categories))
    print("\nself time by package")
    print_table(["package", "share", "us/request"], rows(own_package))
    print("\nself time by function")
    print_table(["function", "share", "us/request"], rows(own))
    print("\ninclusive time by function (the function and what it calls)")
    print_table(["function", "share", "us/request"], rows(inclusive))


def main() -> None:
    path, requests, cpu_s = sys.argv[1:4]
    report(Path(path), int(requests), float(cpu_s))


if __name__ == "__main__":
    main()
