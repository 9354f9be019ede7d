"""Times an operator types: every accepted form, and a clear error for the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qikflow.operations.errors import BadInputError
from qikflow.operations.times import TimeRange, format_ms, parse_time

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-05-01T10:00:00Z", datetime(2026, 5, 1, 10, tzinfo=UTC)),
    ("2026-05-01T15:30:00+05:30", datetime(2026, 5, 1, 10, tzinfo=UTC)),
    ("2026-05-01 10:00", datetime(2026, 5, 1, 10, tzinfo=UTC)),
    ("2026-05-01", datetime(2026, 5, 1, tzinfo=UTC)),
    ("now", NOW),
    ("90s", NOW - timedelta(seconds=90)),
    ("15m", NOW - timedelta(minutes=15)),
    ("24h", NOW - timedelta(hours=24)),
    ("7d", NOW - timedelta(days=7)),
    ("2w", NOW - timedelta(weeks=2)),
])
def test_accepted_forms(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "5x", "2026-13-01", "10", "-5m",
                                  "99999999999w"])
def test_malformed_time_says_which_forms_work(text: str) -> None:
    with pytest.raises(BadInputError, match="use 2026-05-01T10:00:00Z"):
        parse_time(text, name="--since", now=NOW)


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(BadInputError, match="is after until"):
        TimeRange.parse("1h", "2h", now=NOW)


def test_range_bounds_are_inclusive_and_open_ends_take_all() -> None:
    times = TimeRange.parse("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z", now=NOW)
    assert times.since_ms is not None and times.until_ms is not None
    assert times.contains_ms(times.since_ms) and times.contains_ms(times.until_ms)
    assert not times.contains_ms(times.since_ms - 1)
    assert not times.contains_ms(times.until_ms + 1)
    assert TimeRange().contains_ms(0) and TimeRange().describe() == "any time"
    assert times.describe() == "2026-05-01 10:00:00Z to 2026-05-01 11:00:00Z"


def test_format_ms() -> None:
    assert format_ms(1_777_629_600_123) == "2026-05-01 10:00:00.123Z"
    assert format_ms(None) == format_ms(0) == "-"
