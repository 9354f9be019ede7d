"""The version-2 fields of a status, from Meta's status object or Qikchat's `message`:
pricing, conversation, every error, and the business's callback data.

Each is read only when it is there and has the expected shape; anything else is left out
(the value is still in `raw`), so a malformed part never costs the rest of the status.
"""

from __future__ import annotations

from typing import NamedTuple

from streams.events import Conversation, Pricing, StatusError
from streams.parsers.json_fields import (
    JSONObject,
    array,
    as_text,
    integer,
    nonempty,
    obj,
    text,
    timestamp,
)


class StatusDetails(NamedTuple):
    pricing: Pricing | None
    conversation: Conversation | None
    errors: list[StatusError]
    biz_opaque_callback_data: str | None


def status_details(container: JSONObject) -> StatusDetails:
    return StatusDetails(
        pricing=pricing(container),
        conversation=conversation(container),
        errors=errors(container),
        biz_opaque_callback_data=text(container.get("biz_opaque_callback_data")),
    )


def pricing(container: JSONObject) -> Pricing | None:
    found = obj(container, "pricing")
    if found is None:
        return None
    billable = found.get("billable")
    return Pricing(
        billable=billable if isinstance(billable, bool) else _boolean_text(billable),
        pricing_model=nonempty(found.get("pricing_model")),
        type=nonempty(found.get("type")),
        category=text(found.get("category")),
    )


def conversation(container: JSONObject) -> Conversation | None:
    found = obj(container, "conversation")
    if found is None:
        return None
    origin = obj(found, "origin") or {}
    return Conversation(
        id=text(found.get("id")),
        expires_at=timestamp(found.get("expiration_timestamp")),
        origin_type=nonempty(origin.get("type")),
    )


def errors(container: JSONObject) -> list[StatusError]:
    """Meta's `errors[]` (entries that are not objects are skipped), or Qikchat's `error`."""
    single = obj(container, "error")
    entries = [single] if single is not None else array(container, "errors")
    return [status_error(entry) for entry in entries if isinstance(entry, dict)]


def status_error(entry: JSONObject) -> StatusError:
    data = obj(entry, "error_data") or {}
    sent = entry.get("code")
    code = integer(sent)
    return StatusError(
        code=code,
        code_text=as_text(sent) if code is None else None,
        title=text(entry.get("title")),
        message=text(entry.get("message")),
        details=nonempty(data.get("details")) or nonempty(entry.get("details")),
    )


def _boolean_text(value: object) -> bool | None:
    """`"true"`/`"false"` as some relays stringify booleans; anything else is unknown."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None
