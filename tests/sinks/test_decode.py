"""Tests of sinks/_decode.py: the per-type decode returns what `Event.from_json` does."""

from __future__ import annotations

import orjson
import pydantic
import pytest

from sinks._decode import decode_event
from streams.events import Event
from streams.parsers import Parsed
from tests.streams.fixtures import names, parse


def fixture_events() -> list[Event]:
    events: list[Event] = []
    for name in names():
        outcome = parse(name)
        if isinstance(outcome, Parsed):
            events.extend(outcome.events)
    return events


def test_every_fixture_event_decodes_as_the_full_validation_does() -> None:
    events = fixture_events()
    assert len({event.type for event in events}) >= 20  # every shape the parsers make
    for event in events:
        value = event.to_json()
        full = Event.from_json(value)
        cheap = decode_event(value)
        assert cheap == full, event.event_id
        assert type(cheap.content) is type(full.content), event.event_id
        assert cheap.model_fields_set == full.model_fields_set, event.event_id
        assert cheap.to_json() == full.to_json() == value, event.event_id


@pytest.mark.parametrize("value", [
    b"not json",
    b"[1, 2]",
    b'"a string"',
    b"{}",
    b'{"type": 7, "content": {}}',
    b'{"type": "message.text"}',
])
def test_what_it_cannot_read_fails_with_the_full_validation_error(value: bytes) -> None:
    with pytest.raises(pydantic.ValidationError) as full:
        Event.from_json(value)
    with pytest.raises(pydantic.ValidationError) as cheap:
        decode_event(value)
    assert str(cheap.value) == str(full.value)


def test_a_content_of_another_model_than_its_type_gets_the_full_validation() -> None:
    """A `message.text` whose content is an unknown message's: the smart union of the full
    validation chooses the model, as it always did."""
    event = next(e for e in fixture_events() if e.type == "message.unknown")
    fields = orjson.loads(event.to_json())
    fields["type"] = "message.text"
    value = orjson.dumps(fields)
    assert decode_event(value) == Event.from_json(value)
    assert decode_event(value).type == "message.text"


@pytest.mark.parametrize("member", [
    b'"big":123456789012345678901234567890', b'"huge":1e400', b'"n":1,"n":2', b'"x":Infinity',
])
def test_the_json_of_raw_is_read_as_before(member: bytes) -> None:
    """An integer beyond 64 bits (orjson would read a float), and the corners of JSON."""
    event = fixture_events()[0]
    value = event.to_json().replace(b'"raw":{', b'"raw":{' + member + b",", 1)
    assert decode_event(value).raw == Event.from_json(value).raw
    assert decode_event(value) == Event.from_json(value)


def test_a_lone_surrogate_fails_with_the_full_validation_error() -> None:
    value = fixture_events()[0].to_json().replace(b'"raw":{', b'"raw":{"s":"\\ud800",', 1)
    with pytest.raises(pydantic.ValidationError) as full:
        Event.from_json(value)
    with pytest.raises(pydantic.ValidationError) as cheap:
        decode_event(value)
    assert str(cheap.value) == str(full.value)
