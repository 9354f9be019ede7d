"""Tests of qikflow/supervisor.py with real child processes."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qikflow import supervisor as supervisor_module
from qikflow.local._process import pid_alive
from qikflow.supervisor import ChildSpec, ChildState, Supervisor, exit_status

# Runs once per start: counts its runs in argv[1]; crashes (exit 3) on the runs listed in
# argv[2], stays up argv[3] seconds on the run after them, then crashes once more; stays up.
FLAKY = (
    "import pathlib, sys, time\n"
    "p = pathlib.Path(sys.argv[1])\n"
    "run = (int(p.read_text()) if p.exists() else 0) + 1\n"
    "p.write_text(str(run))\n"
    "print('run', run, flush=True)\n"
    "crashes = int(sys.argv[2])\n"
    "if run <= crashes: sys.exit(3)\n"
    "if run == crashes + 1 and float(sys.argv[3]) > 0:\n"
    "    time.sleep(float(sys.argv[3])); sys.exit(3)\n"
    "time.sleep(120)\n"
)


async def wait_for(condition: object, what: str, timeout_s: float = 60) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_crashed_child_is_restarted_and_reported(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    # Default delays: 1 s, then 2 s.
    spec = ChildSpec("flaky", [sys.executable, "-c", FLAKY, str(marker), "2", "0"])
    supervisor = Supervisor([spec], tmp_path / "logs")
    await supervisor.start()
    child = supervisor.children[0]
    log = tmp_path / "logs" / "flaky.log"
    # `running` turns true at spawn; the log line shows the third run really started.
    await wait_for(lambda: child.restarts == 2 and child.running
                   and log.read_text().count("run ") == 3, "the third run")
    assert child.last_exit == 3
    assert child.last_delay_s == 2 * supervisor_module.RESTART_DELAY_S
    assert "2 restart(s)" in child.describe()
    assert await supervisor.stop() == exit_status(-signal.SIGTERM)
    assert not child.running
    assert log.read_text().count("run ") == 3


async def test_restart_delay_doubles_to_its_ceiling_and_resets_after_a_healthy_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qikflow.supervisor")
    delays: list[float | None] = []

    def spawned(child: ChildState) -> None:
        delays.append(child.last_delay_s)

    # Four quick crashes, then a run longer than healthy_after_s that crashes too.
    spec = ChildSpec("flaky", [sys.executable, "-c", FLAKY, str(tmp_path / "runs"), "4", "3.5"])
    supervisor = Supervisor([spec], tmp_path / "logs", restart_delay_s=0.1,
                            max_restart_delay_s=0.4, healthy_after_s=3.0, on_spawn=spawned)
    await supervisor.start()
    await wait_for(lambda: len(delays) == 6, "the sixth start")
    await supervisor.stop()
    assert delays == [None, 0.1, 0.2, 0.4, 0.4, 0.1]
    recovered = [r.getMessage() for r in caplog.records if "has run 3s" in r.getMessage()]
    assert recovered == ["flaky has run 3s since restart #4; a crash now restarts it after 0s "
                         "again"]


async def test_a_child_that_cannot_be_started_again_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="qikflow.supervisor")
    script = tmp_path / "once.sh"
    body = '#!/bin/sh\necho started >> "$0.runs"\nrm "$0"\nexit 3\n'
    script.write_text(body)
    script.chmod(0o755)
    runs = tmp_path / "once.sh.runs"
    supervisor = Supervisor([ChildSpec("once", [str(script)])], tmp_path / "logs",
                            restart_delay_s=0.1, max_restart_delay_s=0.2)
    await supervisor.start()

    def failed_starts() -> int:
        return sum("could not be started again" in r.getMessage() for r in caplog.records)

    # The script deleted itself: starting it again fails until it is back.
    await wait_for(lambda: failed_starts() >= 2, "two failed starts")
    assert runs.read_text().count("started") == 1
    script.write_text(body)
    script.chmod(0o755)
    await wait_for(lambda: runs.read_text().count("started") == 2, "a start after the fix")
    await supervisor.stop()
    assert "No such file or directory" in next(
        r.getMessage() for r in caplog.records if "could not be started again" in r.getMessage())


async def test_stop_goes_in_order_and_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    order = tmp_path / "order"
    polite = (
        "import pathlib, signal, sys, time\n"
        "def bye(*_):\n"
        f"    open({str(order)!r}, 'a').write(sys.argv[1] + '\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    stubborn = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('ready', flush=True)\ntime.sleep(60)\n")
    specs = [
        ChildSpec("first", [sys.executable, "-c", polite, "first"]),
        ChildSpec("second", [sys.executable, "-c", polite, "second"]),
        ChildSpec("stubborn", [sys.executable, "-c", stubborn], stop_timeout_s=1),
    ]
    supervisor = Supervisor(specs, tmp_path / "logs")
    await supervisor.start()
    logs = [tmp_path / "logs" / f"{spec.name}.log" for spec in specs]
    await wait_for(lambda: all("ready" in log.read_text() for log in logs), "the handlers")
    assert await supervisor.stop() == 128 + signal.SIGKILL
    assert order.read_text().split() == ["first", "second"]
    assert supervisor.children[2].last_exit == -signal.SIGKILL


async def test_stop_at_once_signals_every_child_before_any_has_to_exit(tmp_path: Path) -> None:
    # Each child exits only once every child got SIGTERM: a stop one by one would have to
    # kill them at their stop timeout instead.
    got = tmp_path / "got"
    child = (
        "import pathlib, signal, sys, time\n"
        "got = pathlib.Path(sys.argv[1])\n"
        "def bye(*_):\n"
        "    with got.open('a') as f: f.write(sys.argv[2] + '\\n')\n"
        "    while len(got.read_text().split()) < 3: time.sleep(0.05)\n"
        "    sys.exit(int(sys.argv[3]))\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "pathlib.Path(f'{got}.{sys.argv[2]}.ready').touch()\n"
        "time.sleep(60)\n"
    )
    specs = [ChildSpec(f"w{i}", [sys.executable, "-c", child, str(got), f"w{i}", str(code)],
                       stop_timeout_s=30)
             for i, code in enumerate((0, 5, 0))]
    supervisor = Supervisor(specs, None)  # children write to this process's output
    await supervisor.start()
    await wait_for(lambda: len(list(tmp_path.glob("got.*.ready"))) == 3, "the handlers")
    assert await supervisor.stop(in_order=False) == 5
    assert sorted(got.read_text().split()) == ["w0", "w1", "w2"]
    assert [c.last_exit for c in supervisor.children] == [0, 5, 0]


def test_children_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    for mode in ("prctl", "poll"):
        marker = tmp_path / f"child-{mode}"
        child = (
            "import pathlib, signal, sys, time\n"
            "from qikflow._parent import watch_parent\n"
            "marker = pathlib.Path(sys.argv[1])\n"
            "def bye(*_):\n"
            "    marker.write_text('SIGTERM'); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "watch_parent(use_prctl=sys.argv[2] == 'prctl')\n"
            "marker.write_text('ready')\n"
            "time.sleep(120)\n"
        )
        parent = (
            "import asyncio, sys\n"
            "from qikflow.supervisor import ChildSpec, Supervisor\n"
            "async def main():\n"
            "    spec = ChildSpec('child', [sys.executable, '-c', sys.argv[1], *sys.argv[2:]])\n"
            "    supervisor = Supervisor([spec], None)\n"
            "    await supervisor.start()\n"
            "    print(supervisor.children[0].process.pid, flush=True)\n"
            "    await asyncio.Event().wait()\n"
            "asyncio.run(main())\n"
        )
        with subprocess.Popen([sys.executable, "-c", parent, child, str(marker), mode],
                              stdout=subprocess.PIPE, text=True) as supervisor:
            assert supervisor.stdout is not None
            child_pid = int(supervisor.stdout.readline())
            deadline = time.monotonic() + 60
            while not (marker.exists() and marker.read_text() == "ready"):
                assert time.monotonic() < deadline, "the child never got ready"
                time.sleep(0.05)
            supervisor.kill()
        deadline = time.monotonic() + 30
        while pid_alive(child_pid):
            assert time.monotonic() < deadline, f"child {child_pid} outlived its supervisor"
            time.sleep(0.05)
        assert marker.read_text() == "SIGTERM", mode


def test_exit_status_names_a_signal_as_the_shell_does() -> None:
    assert exit_status(0) == 0
    assert exit_status(3) == 3
    assert exit_status(-signal.SIGKILL) == 137
