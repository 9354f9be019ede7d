"""Helpers for local processes: pid files, identity, waiting for exit, who holds a port."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

PROC = Path("/proc")
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp
COMMAND_LINE_MAX = 160


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


def start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot): with the pid, it names one process.

    A pid is reused after its process ends; the start time tells the new one apart.
    None where /proc cannot say (not Linux, or the process is gone).
    """
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(") ", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def same_process(pid: int, ticks: int | None) -> bool:
    """True while the process `pid` that started at `ticks` is still running."""
    return pid_alive(pid) and (ticks is None or start_ticks(pid) in (ticks, None))


def command_line(pid: int) -> str:
    """The command line of `pid`, with the interpreter path cut to its name ('' if unknown)."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return ""
    words = [word.decode(errors="replace") for word in argv if word]
    if len(words) > 1 and Path(words[0]).name.startswith("python"):
        words = words[1:]
    if words:
        words[0] = Path(words[0]).name
    text = " ".join(" ".join(words).split())
    return text if len(text) <= COMMAND_LINE_MAX else text[:COMMAND_LINE_MAX - 3] + "..."


def stop_pid(pid: int, timeout_s: float) -> bool:
    """SIGTERM `pid`, SIGKILL it after `timeout_s`; True if it stopped on SIGTERM."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if wait_for_exit(pid, timeout_s):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    wait_for_exit(pid, 10)
    return False


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on `host`:`port` now (None: it could)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        return error
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: connections of a stopped server in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return error
    return None


def listening_pids(port: int) -> list[int]:
    """Processes listening on TCP `port`, from /proc; only those this user may inspect."""
    sockets: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    holders: list[int] = []
    for fd_dir in PROC.glob("[0-9]*/fd") if sockets else ():
        try:
            if any(str(fd.readlink()) in sockets for fd in fd_dir.iterdir()):
                holders.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return sorted(holders)


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
