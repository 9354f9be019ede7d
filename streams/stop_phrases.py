"""The stop phrases: does an incoming text ask the business to stop messaging?

The opt-out agent (`streams/agents/optout.py`) emits a `contact.optout` event when it does.

The rule is conservative, because a false opt-out silences a customer who wanted help,
while a missed one costs them a second "STOP":

1. Normalise: Unicode NFKC, case-folded; every character that is not a letter, mark or
   digit (punctuation, emoji, symbols, spaces) separates words; format characters such as
   zero-width joiners are dropped.
2. Drop courtesy words at either end: please, pls, plz, kindly, ji, कृपया, जी.
3. The words that remain must BE one of the known opt-out phrases, compared without the
   spaces between words (`STOPALL` is `stop all`, `band kardo` is `band kar do`). A phrase
   inside a longer message never matches: "stop by tomorrow", "don't stop", "bus stop",
   "when will it stop raining" and "band baja" are not opt-outs.

Phrases: English carrier keywords (stop, stop all, unsubscribe, end, quit, opt out) and
"stop (sending) (me) messages"; Hinglish "band karo" and its spellings, "mat bhejo",
"stop karo", "unsubscribe karo", each optionally after "message(s)/msg/sms"; Devanagari
"बंद (करो)", "रोको", "मत भेजो", optionally after "मैसेज/संदेश". Not included: "cancel",
which in an order chat usually means the order, and a bare Latin "band", an English word.

`detect_optout` returns the canonical phrase that matched (`stop all`, `band kar do`).
"""

from __future__ import annotations

import unicodedata
from itertools import product

# A longer message is a conversation, not an opt-out; skipping it keeps the hot path short.
_MAX_CHARS = 80
_COURTESY = frozenset({"please", "pls", "plz", "kindly", "ji", "कृपया", "जी"})


def _phrases() -> dict[str, str]:
    """Canonical phrase by its space-free form."""
    phrases: list[str] = ["end", "quit", "opt out", "unsubscribe", "unsubscribe me"]
    objects = ("", "message", "messages", "msg", "msgs", "sms")
    for everything, obj in product(("", "all"), objects):
        phrases.append(" ".join(w for w in ("stop", everything, obj) if w))
    for me, obj in product(("", "me"), objects):
        phrases.append(" ".join(w for w in ("stop sending", me, obj) if w))
    do = ("karo", "kar do", "kro", "kr do", "karein", "karen", "kare", "kijiye", "kijie",
          "kar dijiye")
    verbs = [f"{stem} {d}" for stem, d in product(("band", "bandh", "bnd"), do)]
    verbs += [f"{word} {d}" for word, d in product(("stop", "unsubscribe"), do)]
    verbs += ["mat bhejo", "mat bhejiye", "mat bhejie", "mat bhejna", "mt bhejo"]
    for obj, verb in product((*objects, "bhejna", "message bhejna", "messages bhejna"), verbs):
        phrases.append(f"{obj} {verb}".strip())
    hindi = ["बंद", "बन्द", "रोको", "रोक दो", "मत भेजो", "मत भेजिए", "मत भेजिये"]
    hindi += [f"{stem} {d}" for stem, d in product(("बंद", "बन्द"), (
        "करो", "कर दो", "करें", "करे", "कीजिए", "कीजिये", "कर दीजिए"))]
    for obj, verb in product(("", "मैसेज", "मेसेज", "संदेश", "भेजना", "मैसेज भेजना"), hindi):
        phrases.append(f"{obj} {verb}".strip())
    return {phrase.replace(" ", ""): phrase for phrase in phrases}


_PHRASES = _phrases()


def _words(text: str) -> list[str]:
    chars: list[str] = []
    for char in unicodedata.normalize("NFKC", text).casefold():
        category = unicodedata.category(char)
        if category[0] in "LMN":
            chars.append(char)
        elif category != "Cf":
            chars.append(" ")
    return "".join(chars).split()


def detect_optout(text: str) -> str | None:
    """The canonical opt-out phrase `text` consists of, or None (see the module docstring)."""
    if len(text) > _MAX_CHARS:
        return None
    words = _words(text)
    while words and words[0] in _COURTESY:
        words.pop(0)
    while words and words[-1] in _COURTESY:
        words.pop()
    return _PHRASES.get("".join(words))
