"""Runs the real `qikflow ingest` command as a subprocess for HTTP-level tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from qikflow.local._process import free_port

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))


@dataclass
class IngestProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout_s: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def start_ingest(env: dict[str, str], log_path: Path, *, workers: int = 1,
                 wait_ready: bool = True) -> IngestProcess:
    """Start `qikflow ingest` on a free port; return once /healthz answers."""
    port = free_port()
    full_env = {**os.environ, **env}
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [QIKFLOW, "ingest", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while wait_ready and time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ingest exited with {process.returncode}:\n"
                               f"{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return IngestProcess(url, process, log_path)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    if wait_ready:
        process.kill()
        raise RuntimeError("ingest did not become healthy in 30s")
    return IngestProcess(url, process, log_path)


def wait_for(condition: object, timeout_s: float = 30, interval_s: float = 0.2) -> bool:
    """Poll `condition()` until it is truthy or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(interval_s)
    return False


def metric(url: str, sample: str) -> float:
    """One sample of /metrics, named as printed (`name{label="v"}`); 0 when absent."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0
