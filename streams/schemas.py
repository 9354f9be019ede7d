"""JSON Schemas of the published topics, generated from the models in `events.py`.

One schema per event type (`type` and `kind` pinned with `const`, `content` pinned to that
type's content model), one per notice type (`streams/notices.py`, likewise) plus
`contact.optout`, `message.state` and `contact.window`. The
checked-in copies under `schemas/` are regenerated with `python -m streams.schemas
[directory]`; a test fails when they drift from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from streams.events import Event, OptOutEvent, content_model, event_types
from streams.notices import CONTENT_MODELS, NOTICE_TYPES, NoticeEvent
from streams.state_records import ContactWindowRecord, MessageStateRecord

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# The repository's `schemas/` directory (this file is streams/schemas.py).
DEFAULT_DIRECTORY = Path(__file__).resolve().parents[1] / "schemas"


def _open(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without `additionalProperties: false` anywhere: a reader must accept the
    fields a later version adds (see `events.py`)."""
    opened: dict[str, Any] = _opened(schema)
    return opened


def _opened(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: _opened(value) for key, value in schema.items()
                if not (key == "additionalProperties" and value is False)}
    if isinstance(schema, list):
        return [_opened(item) for item in schema]
    return schema


def event_schema(event_type: str) -> dict[str, Any]:
    """The schema of the events on the topic of `event_type`, e.g. `message.text`."""
    schema = Event.model_json_schema(mode="serialization")
    properties = schema["properties"]
    kind = event_type.partition(".")[0]
    properties["kind"] = {k: v for k, v in properties["kind"].items() if k != "enum"}
    properties["kind"]["const"] = kind
    return _pinned(schema, event_type, content_model(event_type).__name__,
                   f"Event {event_type}")


def notice_schema(notice_type: str) -> dict[str, Any]:
    """The schema of the notices on the topic of `notice_type`, e.g. `template.status`."""
    return _pinned(NoticeEvent.model_json_schema(mode="serialization"), notice_type,
                   CONTENT_MODELS[notice_type].__name__, f"Notice {notice_type}")


def _pinned(schema: dict[str, Any], type_name: str, content_name: str,
            title: str) -> dict[str, Any]:
    """`schema` with `type` pinned to `type_name` and `content` to the model
    `content_name`, keeping only the `$defs` that content uses."""
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": type_name}
    properties["content"] = {
        "$ref": f"#/$defs/{content_name}",
        "description": properties["content"].get("description", ""),
    }
    # Keep only the models the content and the other fields use, so each file reads on
    # its own.
    used = {content_name, *_references(schema["$defs"][content_name]),
            *_references(properties)}
    schema["$defs"] = {name: schema["$defs"][name] for name in sorted(used)}
    schema["title"] = title
    return _open({"$schema": DRAFT, **schema})


def optout_schema() -> dict[str, Any]:
    """The schema of `<prefix>.contact.optout`."""
    return _open({"$schema": DRAFT, **OptOutEvent.model_json_schema(mode="serialization")})


def _references(schema: Any) -> set[str]:
    """The `$defs` names a schema refers to (one level: content models nest no deeper)."""
    if isinstance(schema, dict):
        found = {schema["$ref"].rsplit("/", 1)[1]} if isinstance(schema.get("$ref"), str) else set()
        for value in schema.values():
            found |= _references(value)
        return found
    if isinstance(schema, list):
        return set().union(*(_references(item) for item in schema)) if schema else set()
    return set()


def all_schemas() -> dict[str, dict[str, Any]]:
    """Schema by file name (`message.text.schema.json`)."""
    schemas = {f"{t}.schema.json": event_schema(t) for t in event_types()}
    schemas.update({f"{t}.schema.json": notice_schema(t) for t in NOTICE_TYPES})
    schemas["contact.optout.schema.json"] = optout_schema()
    for name, model in (("message.state", MessageStateRecord),
                        ("contact.window", ContactWindowRecord)):
        schemas[f"{name}.schema.json"] = _open(
            {"$schema": DRAFT, **model.model_json_schema(mode="serialization")})
    return schemas


def render(schema: dict[str, Any]) -> str:
    """The checked-in text of a schema: stable key order, two-space indent, final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema into `directory` (created if needed); return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    """Regenerate the schemas into the given directory, or the repository's `schemas/`."""
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else DEFAULT_DIRECTORY
    for path in write_schemas(directory):
        print(path)


if __name__ == "__main__":
    main()
