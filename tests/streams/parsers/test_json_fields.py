"""JSON field readers: numbers to E.164, timestamps to aware UTC, 64-bit integers, nesting
depth, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given

from streams.parsers.json_fields import (
    as_text,
    e164,
    integer,
    nested_deeper_than,
    number,
    received_at,
    timestamp,
)
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


def test_integers_are_signed_64_bit() -> None:
    assert integer(2**63 - 1) == 2**63 - 1
    assert integer(str(-(2**63))) == -(2**63)
    assert integer(2**63) is None
    assert integer(2**64 - 1) is None  # orjson reads it as an int; it still does not fit
    assert integer("0" * 30 + "7") == 7
    assert integer("9" * 20) is None
    assert integer("9" * 5000) is None  # int() refuses more than 4300 digits: not raised


@pytest.mark.parametrize(
    ("value", "expected"),
    [("E-131", "E-131"), (131, "131"), (1.5, "1.5"), (1e22, "1e+22"), (None, None),
     (False, None), ([1], None), ({"code": 1}, None)],
)
def test_as_text_renders_scalars_as_sent(value: Any, expected: str | None) -> None:
    assert as_text(value) == expected


def _nested(levels: int) -> bytes:
    """JSON text of `levels` alternating arrays and objects around a string."""
    opening = "".join('{"a":' if level % 2 else "[" for level in range(levels))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(levels)))
    return f'{opening}"deep"{closing}'.encode()


@pytest.mark.parametrize("levels", [1, 10, 63, 64, 65, 230, 1000])
def test_nesting_is_counted_in_objects_and_arrays(levels: int) -> None:
    source = _nested(levels)
    value = orjson.loads(source)
    assert nested_deeper_than(value, 64) is (levels > 64)
    # The JSON text answers shallow documents without a walk, and never wrongly.
    assert nested_deeper_than(value, 64, source) is (levels > 64)


def test_wide_documents_are_not_deep() -> None:
    wide = {"items": [{"n": [n]} for n in range(1000)]}
    assert not nested_deeper_than(wide, 4, orjson.dumps(wide))
    assert nested_deeper_than(wide, 3, orjson.dumps(wide))
