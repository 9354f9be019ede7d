"""Readers of provider JSON fields, shared by the format parsers: safe getters, E.164
numbers, timestamps.

Every helper takes whatever the provider sent (any JSON value) and returns a clean value or
None. None of them raises: a malformed field must cost the field, never the event.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

JSONObject = dict[str, Any]

# Epoch values above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_EPOCH_MS_ABOVE = 100_000_000_000
# datetime.max as Unix seconds; larger values cannot be a real timestamp.
_EPOCH_S_MAX = 253_402_300_799
# E.164 allows at most 15 digits; fewer than 6 is no phone number anyone can message.
_E164_MIN_DIGITS = 6
_E164_MAX_DIGITS = 15
_NUMBER_PUNCTUATION = str.maketrans("", "", " -().\u00a0\t")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT64_DIGITS = 19


def obj(parent: JSONObject, key: str) -> JSONObject | None:
    """`parent[key]` if it is a JSON object."""
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def array(parent: JSONObject, key: str) -> list[Any]:
    """`parent[key]` if it is a JSON array, else an empty list."""
    value = parent.get(key)
    return value if isinstance(value, list) else []


def first_obj(parent: JSONObject, key: str) -> JSONObject | None:
    """The first element of the array `parent[key]`, if it is an object."""
    items = array(parent, key)
    if items and isinstance(items[0], dict):
        return items[0]
    return None


def text(value: Any) -> str | None:
    """A string field; integers are accepted and rendered (ids sometimes arrive as numbers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def nonempty(value: Any) -> str | None:
    """Like `text`, but an empty or blank string is absent (profile names are often "")."""
    found = text(value)
    return found if found and not found.isspace() else None


def number(value: Any) -> float | None:
    """A finite float from a JSON number or numeric string (coordinates)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            return None
    else:
        return None
    # NaN and infinity cannot travel as JSON; a coordinate like that is garbage anyway.
    return result if math.isfinite(result) else None


def integer(value: Any) -> int | None:
    """A signed 64-bit int from a JSON integer or a string of ASCII digits (error codes).

    Larger values are None: JSON encoders (orjson) and stores (PostgreSQL `bigint`) refuse
    them, and an error code that large is no code anyone can look up."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        found = value
    elif isinstance(value, str):
        stripped = value.strip()
        digits = stripped.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()) or len(digits.lstrip("0")) > _INT64_DIGITS:
            return None
        found = int(stripped)
    else:
        return None
    return found if _INT64_MIN <= found <= _INT64_MAX else None


def as_text(value: Any) -> str | None:
    """A scalar JSON value as the text it was sent as (a number as JSON renders it); None
    for null, booleans, objects and arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value) if isinstance(value, int) else orjson.dumps(value).decode()
    return None


def nested_deeper_than(value: Any, limit: int, source: bytes = b"") -> bool:
    """Whether the JSON value has more than `limit` levels of objects and arrays.

    `source`, the JSON text of `value`, answers most bodies at C speed: a document cannot
    nest deeper than its count of `{` and `[`. Only larger counts walk the value."""
    if source and source.count(b"{") + source.count(b"[") <= limit:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


def e164(value: Any) -> str | None:
    """`+919876543210` from `+91 98765-43210`, `919876543210` or `00919876543210`.

    Spaces, dashes, dots and parentheses are dropped. Anything that is not then 6 to 15
    ASCII digits (after an optional `+` or `00`) is not a phone number: None.
    """
    raw = text(value)
    if not raw:
        return None
    # Most numbers arrive clean (`+9198...` or `9198...`); skip the translate for them.
    clean = raw.isascii() and (raw[1:] if raw[0] == "+" else raw).isdigit()
    cleaned = raw if clean else raw.translate(_NUMBER_PUNCTUATION)
    if cleaned.startswith("+"):
        digits = cleaned[1:]
    elif cleaned.startswith("00"):
        digits = cleaned[2:]
    else:
        digits = cleaned
    if not (digits.isascii() and digits.isdigit()):
        return None
    if not _E164_MIN_DIGITS <= len(digits) <= _E164_MAX_DIGITS:
        return None
    return "+" + digits


def timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (`Z`, offsets, naive = UTC) or Unix epoch.

    Epoch values may be int, float or a digit string; values above 1e11 are milliseconds.
    Zero, negatives and anything unparseable are None.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(value)
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    if stripped.isascii() and stripped.isdigit():
        return _from_epoch(int(stripped))
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # an offset pushing 0001-01-01 or 9999-12-31 out of range
        return None


def _from_epoch(value: float) -> datetime | None:
    if not math.isfinite(value) or value <= 0:
        return None
    seconds = value / 1000 if value > _EPOCH_MS_ABOVE else value
    if seconds > _EPOCH_S_MAX:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def shown(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut short: provider values quoted in reasons may be arbitrarily big."""
    shown_value = repr(value)
    return shown_value if len(shown_value) <= limit else shown_value[:limit] + "..."


def received_at(received_at_ms: int) -> datetime:
    """When ingest received the webhook; now if the record does not say (0 or nonsense)."""
    if 0 < received_at_ms <= _EPOCH_S_MAX * 1000:
        return datetime.fromtimestamp(received_at_ms / 1000, UTC)
    return datetime.now(UTC)
