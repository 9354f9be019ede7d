"""The reconciler's comparisons: what counts as missing, duplicated, misplaced or wrong."""

from __future__ import annotations

from collections import Counter

from qikflow.simulate._compare import (
    StageResult,
    compare_counts,
    compare_outbound,
    compare_placed,
    render_table,
)
from qikflow.simulate.plan import OutboundState
from qikflow.simulate.reconcile import Reconciliation


def test_counts_find_missing_and_extra_copies_and_ignore_foreign_keys() -> None:
    expected = Counter({b"a": 2, b"b": 1, b"c": 1})
    found = Counter({b"a": 1, b"b": 3, b"other run": 7})
    row = compare_counts("raw", expected, found, duplicates_fail=False)
    assert (row.expected, row.found, row.missing, row.duplicated) == (4, 2, 2, 2)
    assert not row.ok
    assert row.examples == (b"a".hex(), b"c".hex())


def test_raw_duplicates_alone_do_not_fail_when_allowed() -> None:
    row = compare_counts("raw", {b"a": 1}, {b"a": 2}, duplicates_fail=False)
    assert row.duplicated == 1
    assert row.ok
    strict = compare_counts("raw", {b"a": 1}, {b"a": 2}, duplicates_fail=True)
    assert not strict.ok


def test_placed_reports_missing_duplicated_and_wrong_topic() -> None:
    expected = {"m1": "message.text", "m2:read": "status.read", "m3": "message.image"}
    found = {"m1": ["message.text", "message.text"], "m2:read": ["status.delivered"],
             "unrelated": ["message.text"]}
    row = compare_placed("routed", expected, found)
    assert (row.expected, row.found, row.missing, row.duplicated, row.mismatched) == (
        3, 2, 1, 1, 1)
    assert "m3" in row.examples
    assert any("m2:read in status.delivered" in example for example in row.examples)
    assert not row.ok


def test_placed_exactly_once_is_ok() -> None:
    row = compare_placed("routed", {"m1": "message.text"}, {"m1": ["message.text"]})
    assert row.ok
    assert (row.found, row.missing, row.duplicated, row.mismatched) == (1, 0, 0, 0)


def test_outbound_final_state_must_match_status_and_failed_flag() -> None:
    expected = {"a": OutboundState("read", False), "b": OutboundState("sent", True),
                "c": OutboundState("delivered", False)}
    found = {"a": OutboundState("read", False), "b": OutboundState("sent", False)}
    row = compare_outbound(expected, found)
    assert (row.expected, row.found, row.missing, row.mismatched) == (3, 2, 1, 1)
    assert any("b: sent failed=False, expected sent failed=True" in e for e in row.examples)


def test_not_checked_rows_say_so_and_do_not_fail() -> None:
    rows = [StageResult("sent", 10, 10),
            StageResult.not_checked("database", "no --database-url"),
            compare_placed("lake", {"x": "message.text"}, {"x": ["message.text"] * 2},
                           duplicates_fail=False)]
    result = Reconciliation(rows)
    assert result.ok
    table = result.table()
    assert "not checked: no --database-url" in table
    assert "duplicates allowed" in table
    assert table.splitlines()[0].split()[:3] == ["stage", "expected", "found"]
    assert result.to_dict()["rows"][1]["checked"] is False


def test_any_failing_row_fails_the_reconciliation_and_shows_examples() -> None:
    result = Reconciliation([StageResult("sent", 2, 2),
                             compare_placed("routed", {"gone": "message.text"}, {})])
    assert not result.ok
    assert "FAIL" in result.table()
    assert "routed: e.g. gone" in render_table(result.rows)
