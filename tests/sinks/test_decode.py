"""Tests of sinks/_decode.py: each topic's decoder returns what the full validation does."""

from __future__ import annotations

import orjson
import pydantic
import pytest

from qikflow.config import KafkaSettings
from qikflow.topics import Topics
from sinks._decode import _only_model, decoders, event_decoder
from sinks._topics import input_topics
from streams.events import Event, content_model, event_types
from streams.parsers import Parsed
from tests.streams.fixtures import names, parse


def fixture_events() -> list[Event]:
    events: list[Event] = []
    for name in names():
        outcome = parse(name)
        if isinstance(outcome, Parsed):
            events.extend(outcome.events)
    return events


def full_or_error(value: bytes) -> Event | str:
    try:
        return Event.from_json(value)
    except pydantic.ValidationError as error:
        return str(error)


def cheap_or_error(event_type: str, value: bytes) -> Event | str:
    try:
        return event_decoder(event_type)(value)
    except pydantic.ValidationError as error:
        return str(error)


def test_every_fixture_event_decodes_as_the_full_validation_does() -> None:
    events = fixture_events()
    assert len({event.type for event in events}) >= 20  # every shape the parsers make
    for event in events:
        value = event.to_json()
        full = Event.from_json(value)
        cheap = event_decoder(event.type)(value)
        assert type(cheap) is Event, event.event_id
        assert cheap == full, event.event_id
        assert type(cheap.content) is type(full.content), event.event_id
        assert cheap.model_fields_set == full.model_fields_set, event.event_id
        assert cheap.to_json() == full.to_json() == value, event.event_id


def test_a_record_on_the_topic_of_another_type_decodes_as_the_full_validation_does() -> None:
    """Every fixture event through the decoder of every type: the same event, or the same
    error (a record can only reach another type's topic by mistake, but a sink reads
    whatever a topic holds)."""
    for event in fixture_events():
        value = event.to_json()
        full = full_or_error(value)
        for event_type in event_types():
            assert cheap_or_error(event_type, value) == full, (event.event_id, event_type)


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
        event_decoder("message.text")(value)
    assert str(cheap.value) == str(full.value)


def test_a_type_whose_content_is_another_model_gets_the_full_validation() -> None:
    """A `message.text` whose content is an unknown message's, on the text topic."""
    event = next(e for e in fixture_events() if e.type == "message.unknown")
    fields = orjson.loads(event.to_json())
    fields["type"] = "message.text"
    value = orjson.dumps(fields)
    assert event_decoder("message.text")(value) == Event.from_json(value)
    assert event_decoder("message.text")(value).type == "message.text"


def test_a_content_another_model_also_takes_gets_the_full_validation() -> None:
    """`{"text": ...}` alone fits OrderContent and ButtonContent; the union of the full
    validation takes the button, and so does the decoder of the order topic."""
    event = next(e for e in fixture_events() if e.type == "message.order")
    fields = orjson.loads(event.to_json())
    fields["content"] = {"text": "two of the blue ones"}
    value = orjson.dumps(fields)
    assert event_decoder("message.order")(value) == Event.from_json(value)
    assert type(event_decoder("message.order")(value).content).__name__ == "ButtonContent"


def test_the_records_qikflow_writes_take_the_cheap_path() -> None:
    """Every fixture event's content carries keys no other content model takes."""
    for event in fixture_events():
        keys = frozenset(event.content.model_dump(mode="json", exclude_unset=False))
        assert _only_model(content_model(event.type), keys), event.event_id


@pytest.mark.parametrize("member", [
    b'"big":123456789012345678901234567890', b'"huge":1e400', b'"n":1,"n":2', b'"x":Infinity',
])
def test_the_json_of_raw_is_read_as_before(member: bytes) -> None:
    """An integer beyond 64 bits, and the corners of JSON."""
    event = fixture_events()[0]
    value = event.to_json().replace(b'"raw":{', b'"raw":{' + member + b",", 1)
    assert event_decoder(event.type)(value).raw == Event.from_json(value).raw
    assert event_decoder(event.type)(value) == Event.from_json(value)


def test_a_lone_surrogate_fails_with_the_full_validation_error() -> None:
    event = fixture_events()[0]
    value = event.to_json().replace(b'"raw":{', b'"raw":{"s":"\\ud800",', 1)
    assert isinstance(full_or_error(value), str)
    assert cheap_or_error(event.type, value) == full_or_error(value)


def test_every_topic_a_sink_reads_has_a_decoder() -> None:
    kafka = KafkaSettings()
    assert set(decoders(Topics.from_settings(kafka))) == set(input_topics(kafka))
