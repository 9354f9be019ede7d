"""The stop phrases: the whole message must be the request, in English, Hinglish or Hindi."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.stop_phrases import detect_optout


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("STOP", "stop"),
        ("stop", "stop"),
        ("  Stop!!! ", "stop"),
        ("STOP 🛑", "stop"),
        ("Stop.", "stop"),
        ("ＳＴＯＰ", "stop"),  # full-width letters
        ("please stop", "stop"),
        ("Stop pls 🙏", "stop"),
        ("STOP ALL", "stop all"),
        ("STOPALL", "stop all"),
        ("stop all messages", "stop all messages"),
        ("Stop sending me messages", "stop sending me messages"),
        ("UNSUBSCRIBE", "unsubscribe"),
        ("Unsubscribe me", "unsubscribe me"),
        ("END", "end"),
        ("quit", "quit"),
        ("OPT OUT", "opt out"),
        ("opt-out", "opt out"),
        ("OPTOUT", "opt out"),
        ("band karo", "band karo"),
        ("Band kar do ji", "band kar do"),
        ("band kardo", "band kar do"),
        ("message band karo", "message band karo"),
        ("mat bhejo", "mat bhejo"),
        ("Message mat bhejo!", "message mat bhejo"),
        ("msg mat bhejo", "msg mat bhejo"),
        ("unsubscribe karo", "unsubscribe karo"),
        ("stop kar do", "stop kar do"),
        ("बंद करो", "बंद करो"),
        ("बंद कर दो", "बंद कर दो"),
        ("बंद", "बंद"),
        ("बन्द करो", "बन्द करो"),
        ("रोको", "रोको"),
        ("मत भेजो", "मत भेजो"),
        ("मैसेज मत भेजो", "मैसेज मत भेजो"),
        ("कृपया मैसेज बंद करें", "मैसेज बंद करें"),
        ("बं\u200dद करो", "बंद करो"),  # a zero-width joiner is dropped
    ],
)
def test_opt_outs(text: str, matched: str) -> None:
    assert detect_optout(text) == matched


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🛑",
        "please",
        "stop by tomorrow",
        "don't stop",
        "bus stop",
        "when will it stop raining",
        "Please stop the delivery, I am not home",
        "band baja",
        "band",
        "cancel",  # in an order chat: cancel the order
        "cancel my order",
        "the end",
        "stop stop stop stop " * 10,
        "mat bhejo kal",
        "दुकान बंद है क्या",
        "stop1",
    ],
)
def test_not_opt_outs(text: str) -> None:
    assert detect_optout(text) is None


@given(st.text())
def test_any_text_gives_a_phrase_or_none(text: str) -> None:
    matched = detect_optout(text)
    assert matched is None or (matched and matched == matched.strip())
