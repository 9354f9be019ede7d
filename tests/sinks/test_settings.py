"""Tests of sinks/settings.py: state follows QIKFLOW_HOME like every other local folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from sinks.settings import SinkSettings


def test_the_lake_lives_under_the_home_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("QIKFLOW_LAKE_DIR", raising=False)
    monkeypatch.delenv("QIKFLOW_HOME", raising=False)
    assert SinkSettings().lake_dir == Path(".qikflow/lake")
    monkeypatch.setenv("QIKFLOW_HOME", str(tmp_path))
    assert SinkSettings().lake_dir == tmp_path / "lake"
    monkeypatch.setenv("QIKFLOW_LAKE_DIR", str(tmp_path / "elsewhere"))
    assert SinkSettings().lake_dir == tmp_path / "elsewhere"
