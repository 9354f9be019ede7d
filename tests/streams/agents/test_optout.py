"""The opt-out agent: texts that mean "stop" emit a contact.optout event; near misses do not.

Which texts mean "stop" is `streams/stop_phrases.py`'s call (tests/streams/test_stop_phrases.py);
this is what the agent makes of it.
"""

from __future__ import annotations

import orjson
import pytest

from qikflow.topics import Topics
from streams.agents.optout import emit_optout, optout_event
from streams.events import Event, OptOutEvent
from streams.headers import EVENT_ID
from streams.parsers import Parsed, parse_raw
from tests.streams._worker import raw_record, status_body, text_body
from tests.streams.conftest import NEAR_MISS, RoutingRun

TOPICS = Topics("qikchat")


def text_event(body: str, message_id: str = "wamid.T1") -> Event:
    outcome = parse_raw(raw_record(text_body(message_id, body)))
    assert isinstance(outcome, Parsed)
    return outcome.events[0]


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", " Stop. ", "STOP ALL", "unsubscribe", "please stop", "Band karo",
     "mat bhejo", "बंद करो", "opt out"],
)
def test_stop_texts_emit_one_optout(text: str) -> None:
    event = text_event(text)
    emitted = emit_optout(event, TOPICS)
    assert len(emitted) == 1
    record = emitted[0]
    assert record.topic == "qikchat.contact.optout"
    optout = OptOutEvent.from_json(record.value)
    assert optout.event_id == "optout:wamid.T1"
    assert optout.contact_number == "+919876543210"
    assert record.key == b"+919876543210"
    assert optout.text == text
    assert (EVENT_ID, b"optout:wamid.T1") in record.headers


@pytest.mark.parametrize(
    "text",
    ["stop by tomorrow", "don't stop", "bus stop", "when will it stop raining",
     "please cancel my order", "band baja", "STOP sending me the wrong size, send XL", ""],
)
def test_near_misses_emit_nothing(text: str) -> None:
    assert emit_optout(text_event(text), TOPICS) == []


def test_statuses_are_never_optouts() -> None:
    outcome = parse_raw(raw_record(status_body("OUT1", "read")))
    assert isinstance(outcome, Parsed)
    assert optout_event(outcome.events[0]) is None


def test_the_same_message_always_gives_the_same_optout_id() -> None:
    first = optout_event(text_event("STOP", "wamid.SAME"))
    again = optout_event(text_event("STOP", "wamid.SAME"))
    assert first is not None and again is not None
    assert orjson.loads(first.to_json())["event_id"] == again.event_id == "optout:wamid.SAME"



def test_a_worker_emits_opt_outs_for_stop_texts_only(routing_run: RoutingRun) -> None:
    emitted = {orjson.loads(r.value)["event_id"] for r in routing_run.optout}
    assert emitted == routing_run.expected_optouts
    assert "optout:wamid.STOP1" in emitted
    assert "optout:wamid.NEAR1" not in emitted
    assert NEAR_MISS in routing_run.bodies
