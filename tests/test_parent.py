"""Tests of qikflow/_parent.py: how a supervised `qikflow` process starts next to its parent.

That a child stops when its supervisor is killed is tested with the supervisor, in
tests/test_supervisor.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from qikflow._parent import PARENT_PID_ENV

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))


def qikflow_down(tmp_path: Path, parent: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QIKFLOW_HOME": str(tmp_path), PARENT_PID_ENV: parent}
    return subprocess.run([QIKFLOW, "down"], capture_output=True, text=True, env=env,
                          check=False, timeout=60)


def test_a_command_whose_supervisor_is_already_gone_does_not_start(tmp_path: Path) -> None:
    gone = str(os.getpid() + 1_000_000)  # not this process, the command's real parent
    result = qikflow_down(tmp_path, gone)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"qikflow down: the supervisor (pid {gone}) that started this process is gone; "
        "not starting")
    assert result.stdout == ""


def test_a_command_started_by_its_supervisor_runs(tmp_path: Path) -> None:
    result = qikflow_down(tmp_path, str(os.getpid()))
    assert result.returncode == 0, result.stderr
    assert "nothing is running" in result.stdout


def test_a_parent_pid_that_is_no_number_is_named_and_ignored(tmp_path: Path) -> None:
    result = qikflow_down(tmp_path, "twelve")
    assert result.returncode == 0, result.stderr
    assert f"ignoring {PARENT_PID_ENV}='twelve': not a process id" in result.stderr
    assert "nothing is running" in result.stdout


def test_grandchildren_do_not_inherit_the_parent_pid() -> None:
    script = ("import os\nfrom qikflow._parent import watch_parent\nwatch_parent()\n"
              f"print(os.environ.get({PARENT_PID_ENV!r}))\n")
    env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, check=True, timeout=60)
    assert result.stdout.strip() == "None"
