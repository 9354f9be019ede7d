"""`Event.from_routed_json` reads what the router wrote exactly as `from_json` does, and
falls back to `from_json` (and its errors) for anything else."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from streams.events import Event
from streams.parsers import Parsed
from tests.streams.fixtures import names, parse


def _events() -> list[Event]:
    return [event for outcome in map(parse, names()) if isinstance(outcome, Parsed)
            for event in outcome.events]


def test_every_fixture_event_reads_back_the_same() -> None:
    events = _events()
    assert {event.kind for event in events} == {"message", "status"}
    for event in events:
        data = event.to_json()
        assert Event.from_routed_json(data) == Event.from_json(data) == event, event.event_id


@pytest.mark.parametrize("data", [b"{}", b'{"content": 5}', b"not json"])
def test_what_the_router_did_not_write_is_refused_as_from_json_refuses_it(data: bytes) -> None:
    with pytest.raises(ValidationError):
        Event.from_routed_json(data)


def test_a_malformed_time_falls_back_to_validation() -> None:
    record = orjson.loads(_events()[0].to_json())
    record["received_at"] = "yesterday"
    with pytest.raises(ValidationError):
        Event.from_routed_json(orjson.dumps(record))
