"""`EventFacts.of_routed_json` reads from the router's JSON exactly what `of_event` takes
from the event, and refuses what the router did not write."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from streams._state_table import _facts
from streams.event_facts import EventFacts, EventFactsError
from streams.events import Event
from streams.parsers import Parsed
from tests.streams.fixtures import names, parse


def _events() -> list[Event]:
    return [event for outcome in map(parse, names()) if isinstance(outcome, Parsed)
            for event in outcome.events]


def test_every_fixture_event_gives_the_same_facts_from_its_json() -> None:
    events = _events()
    assert {event.kind for event in events} == {"message", "status"}
    statuses = [event for event in events if event.kind == "status"]
    assert any(EventFacts.of_event(event).error_code is not None for event in statuses)
    assert any(EventFacts.of_event(event).pricing_category for event in statuses)
    for event in events:
        assert EventFacts.of_routed_json(event.to_json()) == EventFacts.of_event(event), \
            event.event_id


@pytest.mark.parametrize("data", [b"{}", b'{"content": 5}', b"not json", b"[]"])
def test_what_the_router_did_not_write_is_refused(data: bytes) -> None:
    with pytest.raises(EventFactsError):
        EventFacts.of_routed_json(data)


@pytest.mark.parametrize("field, value", [("received_at", "yesterday"), ("received_at", None),
                                          ("occurred_at", 17)])
def test_a_malformed_time_is_refused(field: str, value: object) -> None:
    record = orjson.loads(_events()[0].to_json())
    record[field] = value
    with pytest.raises(EventFactsError):
        EventFacts.of_routed_json(orjson.dumps(record))


def test_the_fold_reads_what_it_refuses_again_with_validation_which_says_why() -> None:
    """dedup dead-letters the event with the validation error, as before the facts."""
    record = orjson.loads(_events()[0].to_json())
    record["received_at"] = "yesterday"
    with pytest.raises(ValidationError, match="received_at"):
        _facts(orjson.dumps(record))
    event = _events()[0]
    assert _facts(event.to_json()) == EventFacts.of_event(event)
