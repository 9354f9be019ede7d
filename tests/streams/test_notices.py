"""The notice model (`streams/notices.py`): content chosen by type, keys, the wire format."""

from __future__ import annotations

import orjson
import pydantic
import pytest

from streams.notices import (
    NOTICE_TYPES,
    AccountUpdateContent,
    NoticeEvent,
    PreferencesContent,
    is_notice_type,
)
from streams.parsers import Parsed
from tests.streams.fixtures import names, parse


def _fixture_notices() -> list[NoticeEvent]:
    return [notice for name in names() if isinstance(outcome := parse(name), Parsed)
            for notice in outcome.notices]


def test_the_content_model_is_the_types_even_where_another_would_fit() -> None:
    """Any object fits `AccountUpdateContent` (every field optional, unknown ones ignored),
    so a union would read a preference as an empty account update: the type decides."""
    (stop, _) = [n for n in _fixture_notices() if n.type == "contact.preferences"]
    again = NoticeEvent.from_json(stop.to_json())
    assert isinstance(again.content, PreferencesContent)
    assert again == stop
    as_account = orjson.loads(stop.to_json()) | {"type": "account.update"}
    assert isinstance(NoticeEvent.model_validate(as_account).content, AccountUpdateContent)


def test_an_unknown_notice_type_is_refused() -> None:
    record = orjson.loads(_fixture_notices()[0].to_json()) | {"type": "template.deleted"}
    with pytest.raises(pydantic.ValidationError, match="unknown notice type"):
        NoticeEvent.model_validate(record)


def test_readers_ignore_fields_a_later_version_adds() -> None:
    notice = _fixture_notices()[0]
    record = orjson.loads(notice.to_json())
    record["added_later"] = 1
    record["content"]["also_later"] = "x"
    assert NoticeEvent.model_validate(record) == notice


def test_keys_keep_each_subjects_order() -> None:
    keys = {(n.type, n.key) for n in _fixture_notices()}
    assert ("call.status", b"wacid.META.CALL1") in keys
    assert ("template.status", b"806312974732579") in keys
    assert ("message.echo", b"+919876543210") in keys
    assert ("provider.error", b"102290129340398") in keys


def test_notice_types_are_not_event_types() -> None:
    assert all(is_notice_type(t) for t in NOTICE_TYPES)
    assert not is_notice_type("message.text")
