"""Load from `wrk` (Debian's package, a C load generator): POST one body with Basic Auth.

wrk is driven by a Lua script written here: it sets the method, the body and the headers
once, and its `done` hook prints one line, `QIKFLOW_WRK {json}`, with the figures read
back by `parse_summary`. The CPU wrk itself used comes from the kernel's accounting of the
child (wait4), so a run can show that the generator was not what limited it.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson

MARKER = "QIKFLOW_WRK "

# wrk calls done() once, after every thread ended; latency is in microseconds. Its
# errors.status counts answers with a status above 399.
_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"status_errors":%d,"socket_errors":%d}\\n', MARKER,
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run: its figures, and the CPU seconds wrk itself used in it."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int  # answers above 399
    socket_errors: int  # connect, read, write errors and timeouts
    cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cores(self) -> float:
        """Cores wrk kept busy on average (1.0: one core all the time)."""
        return self.cpu_s / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return self.status_errors + self.socket_errors


def lua_string(data: bytes) -> str:
    """`data` as a Lua string literal: every byte a decimal escape, so any body fits."""
    return '"' + "".join(f"\\{byte}" for byte in data) + '"'


def script(body: bytes, user: str, password: str) -> str:
    """The Lua script that POSTs `body` as JSON with Basic Auth and reports in `done`."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {lua_string(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Basic {token}"\n'
        f'MARKER = "{MARKER}"\n' + _DONE
    )


def parse_summary(output: str, cpu_s: float) -> WrkResult:
    """The figures of the `QIKFLOW_WRK` line in wrk's standard output."""
    line = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise ValueError(f"wrk printed no {MARKER.strip()} line:\n{output}")
    figures = orjson.loads(line[len(MARKER):])
    return WrkResult(
        requests=figures["requests"], seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000, p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000, status_errors=figures["status_errors"],
        socket_errors=figures["socket_errors"], cpu_s=cpu_s,
    )


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `make bench` installs it "
                         "(or: apt-get install wrk)")
    return found


def run(url: str, script_path: Path, *, connections: int, threads: int,
        duration_s: float) -> WrkResult:
    """Run wrk against `url` for `duration_s` and return its figures and its own CPU."""
    process = subprocess.Popen(
        [wrk_path(), "--threads", str(threads), "--connections", str(connections),
         "--duration", f"{duration_s:g}s", "--timeout", "5s", "--script", str(script_path),
         url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    # wait4 rather than Popen.wait: it also returns what the child used, to the tick.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{output}")
    return parse_summary(output, usage.ru_utime + usage.ru_stime)
