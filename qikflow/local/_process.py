"""Helpers for detached local service processes: pid files and waiting for exit."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import time
from pathlib import Path


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    """Wait until `pid` is gone; reap it if it is our child. True if it exited in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def spawn_detached(command: list[str], log_path: Path) -> int:
    """Start `command` as a daemon (not our child, own session); return its pid.

    A shell starts it in the background and exits at once, so the service outlives
    this process and is never left as our zombie.
    """
    launcher = 'exec "$@" </dev/null >>"$QIKFLOW_SERVICE_LOG" 2>&1 & echo $!'
    result = subprocess.run(
        ["sh", "-c", launcher, "sh", *command],
        capture_output=True, text=True, check=True, start_new_session=True,
        env={**os.environ, "QIKFLOW_SERVICE_LOG": str(log_path)},
    )
    return int(result.stdout.strip())


def free_port(low: int = 20_000, high: int = 32_000) -> int:
    """A TCP port nothing is bound to now, for dedicated local or test instances.

    Chosen below Linux's ephemeral range (32768+): a client retrying a connection to a
    stopped server on an ephemeral port can be handed that very port and connect to
    itself, which would keep the server from binding it again.
    """
    for port in random.sample(range(low, high), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free TCP port between {low} and {high}")


async def wait_http_ok(url: str, timeout_s: float = 30.0) -> None:
    """Return once GET `url` answers 200; raise TimeoutError after `timeout_s`."""
    import httpx

    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f}s")
