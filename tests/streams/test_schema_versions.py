"""Version 2 of the event contract is readable by a reader written for version 1.

A version-1 reader is what a consumer wrote against the version-1 contract: the fields it
lists, with their types. `tests/fixtures/schemas_v1/` is a frozen copy of the schemas
version 1 published. Those files were closed (`additionalProperties: false`); a reader
that ignores fields it does not know (what `docs/topics.md` asks of every reader, and what
the version-2 files allow) reads every version-2 event with them unchanged in every field
they list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict

from streams.events import SCHEMA_VERSION, Event, StatusContent, event_types
from streams.parsers import Parsed
from streams.schemas import all_schemas
from tests.streams.fixtures import names, parse

VERSION_1 = Path(__file__).resolve().parents[1] / "fixtures" / "schemas_v1"


def _ignoring_unknown_fields(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: _ignoring_unknown_fields(value) for key, value in schema.items()
                if key != "additionalProperties"}
    if isinstance(schema, list):
        return [_ignoring_unknown_fields(item) for item in schema]
    return schema


def _v1_validator(event_type: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((VERSION_1 / f"{event_type}.schema.json").read_text(encoding="utf-8"))
    assert schema["$defs"]["StatusContent" if event_type.startswith("status.") else
                           next(iter(schema["$defs"]))]["additionalProperties"] is False
    return jsonschema.Draft202012Validator(_ignoring_unknown_fields(schema))


class V1Status(BaseModel):
    """A consumer's model of a version-1 status, written before version 2 existed."""

    model_config = ConfigDict(extra="ignore")

    status: str
    original_status: str | None = None
    error_code: int | None = None
    error_title: str | None = None
    error_detail: str | None = None
    conversation_id: str | None = None
    pricing_category: str | None = None


def _events() -> list[Event]:
    return [event for outcome in map(parse, names()) if isinstance(outcome, Parsed)
            for event in outcome.events]


def test_this_is_version_2() -> None:
    assert SCHEMA_VERSION == 2
    assert all(event.schema_version == 2 for event in _events())


# Types version 1 had; the topics of later types have no version-1 readers.
VERSION_1_TYPES = sorted(path.name.removesuffix(".schema.json")
                         for path in VERSION_1.glob("*.schema.json")
                         if path.name.removesuffix(".schema.json") in event_types())


def test_version_2_adds_types_and_keeps_every_type_of_version_1() -> None:
    assert {"status.played", "status.deleted"} <= set(event_types()) - set(VERSION_1_TYPES)
    assert len(VERSION_1_TYPES) == 18


@pytest.mark.parametrize("event_type", VERSION_1_TYPES)
def test_every_version_2_event_passes_the_version_1_schema(event_type: str) -> None:
    validator = _v1_validator(event_type)
    events = [event for event in _events() if event.type == event_type]
    for event in events:
        validator.validate(json.loads(event.to_json()))


def test_a_version_1_status_reader_reads_the_same_values_from_version_2() -> None:
    statuses = [event for event in _events() if isinstance(event.content, StatusContent)]
    assert any(event.content.pricing for event in statuses if isinstance(
        event.content, StatusContent)), "the fixtures must carry version-2 fields"
    for event in statuses:
        assert isinstance(event.content, StatusContent)
        read = V1Status.model_validate(json.loads(event.to_json())["content"])
        assert read.model_dump() == event.content.model_dump(include=set(V1Status.model_fields))


def test_version_2_schemas_are_open_to_fields_a_later_version_adds() -> None:
    for name, schema in all_schemas().items():
        assert '"additionalProperties": false' not in json.dumps(schema), name


def test_event_ignores_top_level_fields_a_later_version_adds() -> None:
    event = _events()[0]
    later = {**json.loads(event.to_json()), "schema_version": 3, "added_in_v3": {"x": 1}}
    assert Event.from_json(json.dumps(later)).event_id == event.event_id
