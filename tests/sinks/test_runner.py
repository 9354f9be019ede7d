"""Tests of sinks/runner.py: a production sink never guesses where its database is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("command", [["sink", "postgres"], ["db", "migrate"]])
def test_without_a_database_url_the_command_says_how_to_set_it(
    command: list[str], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QIKFLOW_DATABASE_URL"}
    env["QIKFLOW_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "qikflow", *command], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "QIKFLOW_DATABASE_URL is not set" in result.stderr
    assert "qikflow pg url" in result.stderr
    # Nothing was started on the user's behalf: no local server under the home.
    assert not (tmp_path / "pg").exists()
    assert "Traceback" not in result.stderr
