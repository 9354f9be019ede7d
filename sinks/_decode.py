"""A per-type record as its event: the content validated by the model its type names.

`Event.from_json` validates `content` against the union of every content model (pydantic's
smart union tries each of the thirteen), which was three quarters of the decode and half of
the driver's CPU. A record of `message.text` can only hold TextContent, so `decode_event`
validates the content by that model alone, then the event around the ready content. It
returns exactly what `Event.from_json` returns (tests/sinks/test_decode.py, on every
fixture event). It reads the JSON with pydantic's own parser, as `from_json` does (orjson
reads an integer beyond 64 bits as a float). Anything it cannot read that way (not JSON, no
`type`, a content of another model) goes to `Event.from_json`, whose result or error is
the answer.
"""

from __future__ import annotations

from pydantic_core import from_json

from streams.events import Event, content_model


def decode_event(value: bytes) -> Event:
    """The event of a per-type record; raises what `Event.from_json` raises."""
    try:
        fields = from_json(value)
        fields["content"] = content_model(fields["type"]).model_validate(fields["content"])
        return Event.model_validate(fields)
    except (ValueError, KeyError, TypeError, AttributeError):  # ValidationError is a ValueError
        return Event.from_json(value)

