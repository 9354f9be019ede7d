"""Tests of qikflow/local/up.py and down.py: `qikflow up` stops what it started, whatever ends it.

Each test runs the real command in a subprocess against the shared Kafka and PostgreSQL,
with its own QIKFLOW_HOME, topic prefix, database and ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qikflow.local._process import command_line, pid_alive
from qikflow.local._stack import ProcessRef, ServiceRef, StackRecord
from qikflow.local.postgres import LocalPostgres
from tests._ports import free_port

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))
REPO = Path(__file__).resolve().parents[2]
READY_S = 180.0
# Every child's stop timeout (ingest 30 s, worker and sinks 60 s) plus start-up slack.
GONE_S = 150.0
CHILDREN = ["console", "ingest", "worker", "sink-postgres", "sink-lake"]


@dataclass
class Up:
    """One `qikflow up` subprocess, its output files and its home."""

    process: subprocess.Popen[bytes]
    home: Path
    port: int
    out: Path
    err: Path

    def output(self) -> str:
        text = [self.out.read_text(errors="replace")[-2000:]] if self.out.exists() else []
        return "\n".join([*text, self.err.read_text(errors="replace")[-4000:]])

    def record(self) -> dict[str, object] | None:
        try:
            data: dict[str, object] = json.loads(StackRecord.path(self.home).read_text())
            return data
        except (FileNotFoundError, ValueError):
            return None

    def log(self, name: str) -> str:
        path = self.home / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_ready(self, workers: int = 1) -> None:
        """Until every child runs: ingest answers, workers and sinks joined their groups."""
        deadline = time.monotonic() + READY_S
        while True:
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            record = self.record()
            if (record is not None and len(record["children"]) == len(CHILDREN)  # type: ignore[arg-type]
                    and self.log("worker").count("started worker-") >= (workers if workers > 1
                                                                        else 0)
                    and "Worker ready" in self.log("worker")
                    and "sink consuming" in self.log("sink-postgres")
                    and "sink consuming" in self.log("sink-lake")
                    and self.healthy()):
                return
            time.sleep(0.3)


@pytest.fixture
def stack_env(topic_prefix: str, database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a `qikflow up` on the shared services, all its state in tmp_path."""
    return {
        **os.environ,
        "QIKFLOW_HOME": str(tmp_path / "home"),
        "QIKFLOW_STREAMS_WEB_PORT": str(free_port()),
        "QIKFLOW_LOG_LEVEL": "INFO",
    }


def start_up(env: dict[str, str], tmp_path: Path, name: str, port: int, *args: str,
             pipe_stdout: bool = False) -> Up:
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [QIKFLOW, "up", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdout else stdout, stderr=stderr,
        )
    return Up(process, Path(env["QIKFLOW_HOME"]), port, out, err)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QIKFLOW, *args], env=env, capture_output=True, text=True,
                          check=False, timeout=GONE_S + 60)


def descendants(pid: int) -> set[int]:
    """Every process below `pid` now: children, their children, and so on."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[parent].append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children[todo.pop()]:
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_gone(pids: set[int], what: str) -> None:
    deadline = time.monotonic() + GONE_S
    while alive := {pid for pid in pids if pid_alive(pid)}:
        assert time.monotonic() < deadline, f"{what}: still running: {sorted(alive)}"
        time.sleep(0.2)


def stop(up: Up) -> int:
    """SIGTERM `up` and every process below it gone; its exit code."""
    processes = descendants(up.process.pid)
    up.process.send_signal(signal.SIGTERM)
    code = up.process.wait(timeout=GONE_S)
    wait_gone(processes, "after SIGTERM")
    return code


@pytest.mark.timeout(900)
@pytest.mark.parametrize("ending", ["SIGTERM", "SIGHUP", "closed stdout", "SIGKILL"])
async def test_whatever_ends_up_its_processes_go_and_the_next_up_starts_cleanly(
    ending: str, stack_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    # The killed `up` runs two router workers: its grandchildren must go too.
    workers = 2 if ending == "SIGKILL" else 1
    first = start_up(stack_env, tmp_path, "first", port, "--workers", str(workers),
                     pipe_stdout=ending == "closed stdout")
    try:
        first.wait_ready(workers)
        processes = descendants(first.process.pid)
        assert len(processes) >= len(CHILDREN) + (workers if workers > 1 else 0)
        if ending == "closed stdout":
            assert first.process.stdout is not None
            first.process.stdout.close()
        else:
            first.process.send_signal(getattr(signal, ending))
        code = first.process.wait(timeout=GONE_S)
        wait_gone(processes, ending)
    finally:
        if first.process.poll() is None:
            stop(first)
    if ending == "SIGKILL":
        assert code == -signal.SIGKILL
        assert first.record() is not None  # nobody removed it: the next `up` must cope
    else:
        assert code == 0, first.output()
        assert first.record() is None
        reason = {"SIGTERM": "SIGTERM", "SIGHUP": "SIGHUP: the terminal went away",
                  "closed stdout": "stdout closed: its reader went away"}[ending]
        assert f"stopping ({reason}): console, ingest, worker, sinks" in first.output()

    second = start_up(stack_env, tmp_path, "second", port)
    try:
        second.wait_ready()
        if ending == "SIGKILL":
            assert (f"the earlier qikflow up (pid {first.process.pid}, started at "
                    in second.output())
    finally:
        assert stop(second) == 0, second.output()
    for up in (first, second):
        assert "exited with code" not in up.output(), up.output()


@pytest.mark.timeout(900)
async def test_a_stack_left_running_is_named_then_stopped_by_down(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    first = start_up(stack_env, tmp_path, "first", port)
    try:
        first.wait_ready()
        record = first.record()
        assert record is not None
        again = run(stack_env, "up", "--host", "127.0.0.1", "--port", str(port))
        assert again.returncode == 1
        assert again.stderr.strip().splitlines() == [
            f"qikflow up: a qikflow up (pid {first.process.pid}, started at "
            f"{record['started_at']}) stack is still running here, with the ingest on port "
            f"{port}; stop it with `qikflow down`"]
        processes = descendants(first.process.pid)
        down = run(stack_env, "down")
        assert down.returncode == 0, down.stderr
        assert down.stdout.splitlines() == [
            f"qikflow down: stopping the qikflow up (pid {first.process.pid}, started at "
            f"{record['started_at']}) stack: console, ingest, worker, sinks, then the local "
            "services it started ...",
            "qikflow down: stopped"]
        # `down` returns once `up` finished its ordered stop.
        assert first.process.wait(timeout=10) == 0
        assert not any(pid_alive(pid) for pid in processes)
        assert "stopping (SIGTERM): console, ingest, worker, sinks" in first.output()
    finally:
        if first.process.poll() is None:
            stop(first)
    down_again = run(stack_env, "down")
    assert down_again.returncode == 0
    assert down_again.stdout.strip() == (
        f"qikflow down: nothing is running (no qikflow up stack recorded in {first.home})")


def test_a_taken_port_is_named_with_its_holder_before_anything_starts(tmp_path: Path) -> None:
    env = {**os.environ, "QIKFLOW_HOME": str(tmp_path / "home")}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run(env, "up", "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"qikflow up: port {port} is already taken by pid {os.getpid()} "
        f"({command_line(os.getpid())}); stop it, or choose another port with --port"]
    assert not (tmp_path / "home").exists()  # no record, no logs, no credentials


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "0"], "qikflow up: --port must be between 1 and 65535, not 0"),
    (["--port", "65536"], "qikflow up: --port must be between 1 and 65535, not 65536"),
    (["--workers", "0"], "qikflow up: --workers must be at least 1, not 0"),
    (["--refresh", "0"], "qikflow up: --refresh must be a positive number of seconds, not 0.0"),
    (["--host", "no-such-host.invalid", "--port", "8080"],
     "qikflow up: cannot listen on no-such-host.invalid:8080: [Errno -2] Name or service not "
     "known; check --host"),
])
def test_bad_options_get_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = {**os.environ, "QIKFLOW_HOME": str(tmp_path / "home")}
    result = run(env, "up", *args)
    assert result.returncode in (1, 2)
    assert result.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "home").exists()


def test_an_unreadable_record_is_named_by_up_and_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    StackRecord.path(home).write_text("{not json")
    env = {**os.environ, "QIKFLOW_HOME": str(home)}
    for command in ("up", "down"):
        result = run(env, command)
        assert result.returncode == 1
        assert result.stderr.startswith(
            f"qikflow {command}: cannot read {StackRecord.path(home)} (JSONDecodeError: ")
        assert result.stderr.strip().endswith(
            "if no qikflow up is running from this directory, delete that file")
    assert StackRecord.path(home).read_text() == "{not json"


@pytest.fixture
def repo_home() -> Iterator[Path]:
    """A QIKFLOW_HOME under the checkout's .qikflow: the PostgreSQL server user, when
    running as root, cannot reach into pytest's temporary directories."""
    home = REPO / ".qikflow" / f"test-up-{uuid.uuid4().hex[:8]}"
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_what_a_killed_up_left_is_named_by_up_and_stopped_by_down(repo_home: Path) -> None:
    """A child that outlived its killed `up`, and the local PostgreSQL that `up` started."""
    home = repo_home
    env = {**os.environ, "QIKFLOW_HOME": str(home)}
    postgres = LocalPostgres(home=home, name="pg", port=free_port())
    postgres.start()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]) as orphan:
        try:
            record = StackRecord(ProcessRef("up", int(dead.stdout), None), "2026-01-02 03:04:05",
                                 "127.0.0.1", 8080,
                                 [ProcessRef.of("ingest", orphan.pid, stop_timeout_s=5)],
                                 [ServiceRef("postgres", "pg", postgres.port)])
            record.write(home)
            up = run(env, "up")
            assert up.returncode == 1
            assert up.stderr.strip().splitlines() == [
                f"qikflow up: processes of an earlier qikflow up (pid {dead.stdout.strip()}, "
                f"started at 2026-01-02 03:04:05) are still running (ingest pid {orphan.pid}); "
                "stop them with `qikflow down`"]
            down = run(env, "down")
            assert down.returncode == 0, down.stderr
            assert down.stdout.splitlines() == [
                f"qikflow down: stopping ingest (pid {orphan.pid})",
                f"qikflow down: stopping PostgreSQL 'pg' :{postgres.port}",
                f"qikflow down: stopped what the qikflow up (pid {dead.stdout.strip()}, started "
                "at 2026-01-02 03:04:05) left running"]
            assert orphan.wait(timeout=10) == -signal.SIGTERM
            assert not postgres.running()
        finally:
            orphan.kill()
            postgres.stop()
    assert run(env, "down").stdout.startswith("qikflow down: nothing is running (no qikflow up")


def test_a_record_whose_processes_are_all_gone_is_cleared_by_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "QIKFLOW_HOME": str(home)}
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    StackRecord(ProcessRef("up", int(dead.stdout), None), "2026-01-02 03:04:05", "127.0.0.1",
                8080, [ProcessRef("ingest", int(dead.stdout), None)]).write(home)
    down = run(env, "down")
    assert down.returncode == 0
    assert down.stdout.strip() == (
        f"qikflow down: nothing is running; the qikflow up (pid {dead.stdout.strip()}, started "
        "at 2026-01-02 03:04:05) had ended without clearing its record, now removed")
    assert not StackRecord.path(home).exists()
