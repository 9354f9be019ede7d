"""Bodies shown safely whatever the bytes, and the kind a raw body says it is."""

from __future__ import annotations

import pytest

from qikflow.operations.records import (
    DISPLAY_LIMIT_BYTES,
    body_kind,
    escape_bytes,
    show_body,
    shown_headers,
)


def test_json_is_pretty_printed() -> None:
    shown = show_body(b'{"event":"whatsapp:message:in","n":[1,2]}')
    assert shown.kind == "json"
    assert shown.text.splitlines()[1] == '  "event": "whatsapp:message:in",'
    assert shown.label() == "json, 41 bytes"


def test_utf8_text_is_shown_as_text() -> None:
    shown = show_body("नमस्ते, not JSON".encode())
    assert (shown.kind, shown.text) == ("text", "नमस्ते, not JSON")


@pytest.mark.parametrize("body", [b"\x00\x01binary\xff", b"ESC \x1b[31m red", b"\xc3\x28"])
def test_binary_and_control_characters_are_escaped(body: bytes) -> None:
    shown = show_body(body)
    assert shown.kind == "bytes"
    assert all(char == "\n" or 0x20 <= ord(char) < 0x7F for char in shown.text)


def test_escaping_keeps_backslashes_apart_from_escapes() -> None:
    assert escape_bytes(b"a\\x00\x00\n") == "a\\\\x00\\x00\n"


def test_a_body_past_the_default_display_limit_is_cut_and_says_so() -> None:
    body = b'{"text": "' + "é".encode() * DISPLAY_LIMIT_BYTES + b'"}'
    shown = show_body(body)
    assert shown.truncated and shown.kind == "text"
    assert len(shown.text.encode()) <= DISPLAY_LIMIT_BYTES
    assert shown.label().endswith("characters shown")
    assert show_body(b"").kind == "empty"


def test_headers_are_text_or_escaped() -> None:
    assert shown_headers([("a", b"plain"), ("b", b"\xff\x00")]) == [
        ("a", "plain"), ("b", "\\xff\\x00")]


@pytest.mark.parametrize(("body", "kind"), [
    (b'{"event": "whatsapp:message:edited", "payload": {}}', "whatsapp:message:edited"),
    (b'{"message": {"event": "whatsapp:message:in"}}', "whatsapp:message:in"),
    (b'{"object": "page", "entry": []}', "page"),
    (b'{"hello": 1}', ""), (b"[1, 2]", ""), (b"not json", ""), (None, ""),
])
def test_body_kind(body: bytes | None, kind: str) -> None:
    assert body_kind(body) == kind
