"""Tests of qikflow/local/supervisor.py with real child processes."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from qikflow.local import supervisor as supervisor_module
from qikflow.local.supervisor import ChildSpec, Supervisor


async def test_crashed_child_is_restarted_and_reported(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    # Crashes on its first two runs, then stays up.
    script = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "runs = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(runs + 1))\n"
        "print('run', runs + 1, flush=True)\n"
        "sys.exit(3) if runs < 2 else time.sleep(60)\n"
    )
    supervisor = Supervisor([ChildSpec("flaky", [sys.executable, "-c", script])],
                            tmp_path / "logs")
    await supervisor.start()
    child = supervisor.children[0]
    log = tmp_path / "logs" / "flaky.log"

    def third_run_is_up() -> bool:
        # `running` turns true at spawn; the log line shows the third run really started.
        return child.restarts == 2 and child.running and log.read_text().count("run ") == 3

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not third_run_is_up():
        await asyncio.sleep(0.1)
    assert child.restarts == 2
    assert child.running
    assert child.last_exit == 3
    assert "2 restart(s)" in child.describe()
    await supervisor.stop()
    assert not child.running
    assert log.read_text().count("run ") == 3


async def test_stop_goes_in_order_and_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    order = tmp_path / "order"
    polite = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        f"    open({str(order)!r}, 'a').write(sys.argv[1] + '\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "time.sleep(60)\n"
    )
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"
    )
    specs = [
        ChildSpec("first", [sys.executable, "-c", polite, "first"]),
        ChildSpec("second", [sys.executable, "-c", polite, "second"]),
        ChildSpec("stubborn", [sys.executable, "-c", stubborn], stop_timeout_s=1),
    ]
    supervisor = Supervisor(specs, tmp_path / "logs")
    await supervisor.start()
    await asyncio.sleep(1.0)  # let the children install their handlers
    await supervisor.stop()
    assert order.read_text().split() == ["first", "second"]
    assert supervisor.children[2].last_exit == -9
    assert supervisor_module.RESTART_BACKOFF_MAX_S >= 1
