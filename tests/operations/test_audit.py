"""The audit trail: whole JSON lines, newest first, and an unwritable file stops an action."""

from __future__ import annotations

from pathlib import Path

import pytest

from qikflow.operations.audit import AuditTrail, AuditTrailError


def test_entries_come_back_newest_first(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit" / "trail.jsonl")
    for n in range(5):
        trail.record("ops", "redrive", source="dlq", sent=n, filter={"reason": "x"})
    entries = trail.recent(3)
    assert [entry["sent"] for entry in entries] == [4, 3, 2]
    assert entries[0]["who"] == "ops" and entries[0]["filter"] == {"reason": "x"}
    assert entries[0]["at"].endswith("+00:00")
    assert len((tmp_path / "audit" / "trail.jsonl").read_text().splitlines()) == 5


def test_a_trail_that_cannot_be_written_refuses_before_anything_moves(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    trail = AuditTrail(tmp_path / "taken")
    with pytest.raises(AuditTrailError, match="nothing was done"):
        trail.check()
    assert AuditTrail(tmp_path / "none.jsonl").recent(10) == []
