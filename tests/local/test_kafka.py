"""Tests of the local broker command: idempotent start, status, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from qikflow.local.kafka import LocalKafka, answers_metadata

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QIKFLOW, *args], capture_output=True, text=True, check=False,
                          env=env if env is not None else dict(os.environ))


def test_start_is_idempotent_and_status_says_where(kafka_bootstrap: str) -> None:
    broker = LocalKafka(home=Path(".qikflow"), name="test", port=29092)
    if kafka_bootstrap != broker.bootstrap or broker.pid() is None:
        # The broker of this run is not one this checkout manages (an external cluster,
        # or another checkout's): `start` must only check it, never start a second one.
        result = run("broker", "start")
        assert "existing cluster" in result.stdout
        return
    env = {k: v for k, v in os.environ.items() if k != "QIKFLOW_KAFKA_BOOTSTRAP"}
    result = run("broker", "start", "--name", "test", "--port", "29092", env=env)
    assert result.returncode == 0, result.stderr
    assert "ready on 127.0.0.1:29092" in result.stdout
    status = run("broker", "status", "--name", "test", "--port", "29092", env=env)
    assert status.returncode == 0
    assert f"pid {broker.pid()}" in status.stdout
    assert answers_metadata(broker.bootstrap)


def test_external_cluster_is_honoured() -> None:
    env = {**os.environ, "QIKFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    result = run("broker", "start", env=env)
    assert result.returncode == 1
    assert "QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:1 names an existing cluster" in result.stdout
    assert "does NOT answer" in result.stdout


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    # A PATH without java: the command must say what to install, or how to avoid it.
    env = {k: v for k, v in os.environ.items() if k != "QIKFLOW_KAFKA_BOOTSTRAP"}
    env["PATH"] = str(Path(sys.executable).parent)
    env["QIKFLOW_HOME"] = str(Path(".qikflow").resolve())
    result = run("broker", "start", "--name", "nojava", "--port", "39192", env=env)
    assert result.returncode == 1
    assert "`java` is not on PATH" in result.stderr
    assert "QIKFLOW_KAFKA_BOOTSTRAP" in result.stderr


def test_stopped_broker_reports_stopped(tmp_path: Path) -> None:
    broker = LocalKafka(home=tmp_path, name="never", port=39292)
    assert broker.pid() is None
    assert "stopped" in broker.status()
    assert broker.stop() is False
