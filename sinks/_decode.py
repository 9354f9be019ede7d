"""How a sink decodes the records of each topic it reads; events by the model of their type.

`Event.from_json` validates `content` against the union of every content model (pydantic's
smart union tries each of the thirteen), which was three quarters of the decode and half of
the driver's CPU. A record of the `message.text` topic holds TextContent, so its decoder
validates the record as an event whose content can only be TextContent, then hands back an
`Event` with the same state. It keeps that event only when the union could have chosen no
other model for the content's keys, so it returns exactly what `Event.from_json` returns
(tests/sinks/test_decode.py, on every fixture event with the decoder of every type); a
record it cannot read that way (not JSON, a content of another model or whose keys another
model also takes, a type whose content is another model) goes to `Event.from_json`, whose
result or error is the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import get_args

import pydantic

from qikflow.topics import Topics
from streams.events import Content, Event, OptOutEvent, content_model, event_types
from streams.notices import NOTICE_TYPES, NoticeEvent

Decoder = Callable[[bytes], Event | OptOutEvent | NoticeEvent]


def decoders(topics: Topics) -> dict[str, Decoder]:
    """The decoder of every topic a sink reads (`sinks/_topics.input_topics`)."""
    table: dict[str, Decoder] = {topics.event(name): event_decoder(name)
                                 for name in event_types()}
    table.update({topics.event(name): NoticeEvent.from_json for name in NOTICE_TYPES})
    table[topics.optout] = OptOutEvent.from_json
    return table


def event_decoder(event_type: str) -> Callable[[bytes], Event]:
    """Decodes the records of the topic of `event_type`; raises what `Event.from_json`
    raises."""
    model = content_model(event_type)
    typed = _typed_event(model)

    def decode(value: bytes) -> Event:
        try:
            typed_event = typed.model_validate_json(value)
        except pydantic.ValidationError:
            return Event.from_json(value)
        if (content_model(typed_event.type) is not model  # a record of another type
                or not _only_model(model, frozenset(typed_event.content.model_fields_set))):
            return Event.from_json(value)
        # The same fields, values and fields set, as an Event (pickle's way of copying).
        event = Event.__new__(Event)
        event.__setstate__(typed_event.__getstate__())
        return event

    return decode


@cache
def _only_model(model: type[pydantic.BaseModel], keys: frozenset[str]) -> bool:
    """Whether no other content model accepts a content of these keys (models refuse keys
    they do not have and need their required ones), so that the union of
    `Event.from_json` can only choose `model` too. A content qikflow wrote carries every
    key of its model, which no other model accepts; `{"text": ...}` alone is an
    OrderContent's and a ButtonContent's, and the union takes the button."""
    return not any(
        keys <= other.model_fields.keys()
        and all(name in keys for name, info in other.model_fields.items() if info.is_required())
        for other in get_args(Content) if other is not model
    )


@cache
def _typed_event(model: type[pydantic.BaseModel]) -> type[Event]:
    """An Event whose content is `model` alone."""
    return pydantic.create_model(f"_EventOf{model.__name__}", __base__=Event,
                                 content=(model, ...))
