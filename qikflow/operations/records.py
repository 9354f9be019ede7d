"""What the operator tools show of a record: its headers and body, safely, whatever the bytes.

A body is shown as pretty JSON when it is JSON, as text when it is UTF-8 without control
characters, and otherwise as escaped bytes (`\\x00`); past `limit` bytes it is cut and says
so. Nothing here logs a body.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ingest.record import FIELD_CAPS_BYTES

# Added to a record a re-drive sends again: when (epoch ms) and from where
# (`<topic>[<partition>]@<offset>`, or `quarantine:<receipt id>`).
REDRIVEN_AT_MS = "qikflow-redriven-at-ms"
REDRIVEN_FROM = "qikflow-redriven-from"
# The headers ingest puts on a raw record (ingest/record.py), the ones a re-drive keeps.
INGEST_HEADERS = frozenset(FIELD_CAPS_BYTES)

DISPLAY_LIMIT_BYTES = 256 * 1024
# How each byte is shown in escaped form: printable ASCII and newline as themselves.
_ESCAPED = [
    "\\\\" if byte == 0x5C else chr(byte) if 0x20 <= byte < 0x7F or byte == 0x0A
    else f"\\x{byte:02x}"
    for byte in range(256)
]


@dataclass(frozen=True, slots=True)
class ShownBody:
    """A body ready to print: `kind` says how `text` was made from the bytes."""

    kind: Literal["empty", "json", "text", "bytes"]
    text: str
    size: int
    truncated: bool

    def label(self) -> str:
        cut = f", first {len(self.text)} characters shown" if self.truncated else ""
        return f"{self.kind}, {self.size} bytes{cut}"


def show_body(value: bytes | None, limit: int = DISPLAY_LIMIT_BYTES) -> ShownBody:
    """`value` as pretty JSON, text or escaped bytes; never raises."""
    data = value or b""
    if not data:
        return ShownBody("empty", "", 0, False)
    if len(data) <= limit:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            pretty = orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode()
            return ShownBody("json", pretty, len(data), False)
    head = data[:limit]
    truncated = len(data) > limit
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if not (truncated and error.start >= len(head) - 3):
            return ShownBody("bytes", escape_bytes(head), len(data), truncated)
        text = head[:error.start].decode("utf-8")  # cut inside the last character
    if any(ord(char) < 0x20 and char not in "\n\t\r" or char == "\x7f" for char in text):
        return ShownBody("bytes", escape_bytes(head), len(data), truncated)
    return ShownBody("text", text, len(data), truncated)


def escape_bytes(data: bytes) -> str:
    """Printable ASCII and newlines as they are, every other byte as `\\xNN`."""
    return "".join(_ESCAPED[byte] for byte in data)


def shown_headers(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """Header values as text; bytes that are not UTF-8 are escaped."""
    shown = []
    for name, value in headers:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = escape_bytes(value)
        shown.append((name, text))
    return shown


def body_kind(value: bytes | None) -> str:
    """What a raw body says it is, for filtering: a Qikchat `event` name, a Meta `object`,
    or "" (not JSON, or neither)."""
    try:
        body: Any = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    wrapped = body.get("message")
    for source in (body, wrapped if isinstance(wrapped, dict) else {}):
        for key in ("event", "object"):
            found = source.get(key)
            if isinstance(found, str):
                return found
    return ""
