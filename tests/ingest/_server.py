"""Runs the real `qikflow ingest` command as a subprocess for HTTP-level tests."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._ports import free_port

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
                 wait_ready: bool = True, open_files: int | None = None) -> IngestProcess:
    """Start `qikflow ingest` on a free port; return once /healthz answers.

    `open_files` sets the child's open-file limit (`ulimit -n`).
    """
    port = free_port()
    full_env = {**os.environ, **env}

    def limit_open_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [QIKFLOW, "ingest", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            env=full_env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=limit_open_files if open_files is not None else None,
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


def start_default_ingest(tmp_path: Path) -> IngestProcess:
    """An ingest with nothing set but credentials (qikchat:s3cret) and a spool directory:
    every limit at the default a user gets."""
    return start_ingest({"QIKFLOW_WEBHOOK_USERS": "qikchat:s3cret",
                         "QIKFLOW_SPOOL_DIR": str(tmp_path / "spool")},
                        tmp_path / "ingest.log")


def wait_for(condition: object, timeout_s: float = 30, interval_s: float = 0.2) -> bool:
    """Poll `condition()` until it is truthy or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(interval_s)
    return False


def resident_mib(pid: int) -> float:
    """Resident memory (VmRSS) of process `pid`, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def metric(url: str, sample: str) -> float:
    """One sample of /metrics, named as printed (`name{label="v"}`); 0 when absent."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0
