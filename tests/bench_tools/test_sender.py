"""bench/_sender.py: what it reads of an answer."""

from __future__ import annotations

from bench._sender import receipt_of


def test_the_receipt_id_comes_from_a_json_answer_and_nothing_else() -> None:
    assert receipt_of(b'{"status":"accepted","receipt_id":"01abc","stored_in":"kafka"}') == "01abc"
    assert receipt_of(b'{"status":"unauthorized"}') is None
    assert receipt_of(b'{"receipt_id": 7}') is None
    assert receipt_of(b"[1, 2]") is None
    assert receipt_of(b"<html>") is None
