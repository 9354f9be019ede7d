"""JSON field readers: numbers to E.164, timestamps to aware UTC, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given

from streams.parsers.json_fields import e164, integer, number, received_at, timestamp
from tests.streams.fixtures.strategies import json_values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+919876543210", "+919876543210"),
        ("919876543210", "+919876543210"),
        ("+91 98765-43210", "+919876543210"),
        ("0091 98765 43210", "+919876543210"),
        ("(080) 4123.4567", "+08041234567"),
        (919876543210, "+919876543210"),
        ("", None),
        (None, None),
        ("+", None),
        ("12345", None),
        ("1234567890123456", None),
        ("+91abc", None),
        ("٩١٩٨٧٦٥٤٣٢١٠", None),  # Arabic-Indic digits are not ASCII
        (True, None),
        ({"to": "+91"}, None),
    ],
)
def test_e164(value: Any, expected: str | None) -> None:
    assert e164(value) == expected


_T = datetime(2026, 11, 20, 9, 15, 2, 412000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T09:15:02.412Z", _T),
        ("2026-11-20T14:45:02.412+05:30", _T),
        ("2026-11-20T09:15:02.412", _T),  # naive is UTC
        ("1763643146", datetime(2025, 11, 20, 12, 52, 26, tzinfo=UTC)),
        (1763643146, datetime(2025, 11, 20, 12, 52, 26, tzinfo=UTC)),
        (1763643146.5, datetime(2025, 11, 20, 12, 52, 26, 500000, tzinfo=UTC)),
        ("1763643146000", datetime(2025, 11, 20, 12, 52, 26, tzinfo=UTC)),  # milliseconds
        (1763643146123, datetime(2025, 11, 20, 12, 52, 26, 123000, tzinfo=UTC)),
        ("0", None),
        (-5, None),
        ("", None),
        (None, None),
        (True, None),
        ("yesterday", None),
        ("99999999999999999999", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("٣", None),
        ([], None),
    ],
)
def test_timestamp(value: Any, expected: datetime | None) -> None:
    assert timestamp(value) == expected


@given(json_values)
def test_helpers_never_raise_and_timestamps_are_utc(value: Any) -> None:
    e164(value)
    integer(value)
    number(value)
    parsed = timestamp(value)
    assert parsed is None or parsed.utcoffset() == UTC.utcoffset(None)


def test_integer_and_number() -> None:
    assert integer("131026") == 131026
    assert integer(" -7 ") == -7
    assert integer("12a") is None
    assert integer(False) is None
    assert number("77.5946") == 77.5946
    assert number("nan") is None
    assert number(True) is None


def test_received_at() -> None:
    assert received_at(1_763_643_146_000) == datetime(2025, 11, 20, 12, 52, 26, tzinfo=UTC)
    assert received_at(0).tzinfo is not None
    assert received_at(10**30).year >= 2025
