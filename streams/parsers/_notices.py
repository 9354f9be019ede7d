"""The notices of one change of a Meta body (`streams/notices.py`): template and account
updates, user preferences, value-level errors, calls and business app echoes.

Each reader takes what it knows from the provider object and leaves the rest in `raw`. An
object that lacks what identifies it (a template update with neither id nor name, a call
without an id, a preference without `wa_id` or `value`, an echo without an id) gives no
notice; a body of nothing else is Unrecognised, so it reaches `<prefix>.unknown` unchanged.
Ids without a provider id (templates, accounts, errors) are a digest of what the provider
sent, so a resent webhook gives the same id and dedup drops the copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from streams.notices import (
    ACCOUNT_UPDATE,
    CALL_CONNECT,
    CALL_STATUS,
    CALL_TERMINATE,
    CONTACT_PREFERENCES,
    MESSAGE_ECHO,
    PROVIDER_ERROR,
    TEMPLATE_STATUS,
    AccountUpdateContent,
    CallContent,
    EchoContent,
    NoticeContent,
    NoticeEvent,
    PreferencesContent,
    ProviderErrorContent,
    TemplateStatusContent,
)
from streams.parsers._content import message_content
from streams.parsers._status_details import errors, status_error
from streams.parsers.json_fields import (
    JSONObject,
    array,
    e164,
    integer,
    nonempty,
    obj,
    text,
    timestamp,
)

if TYPE_CHECKING:
    from datetime import datetime

    from streams.parsers._outcome import Origin

TEMPLATE_FIELDS = {"message_template_status_update": "status",
                   "message_template_quality_update": "quality",
                   "template_category_update": "category"}
ACCOUNT_FIELDS = frozenset({"account_update", "account_alerts", "account_review_update",
                            "phone_number_quality_update", "phone_number_name_update",
                            "business_capability_update"})
# An account update says at least one of these (Meta's documented fields); the content
# takes the common ones, `raw` keeps all.
_ACCOUNT_KEYS = ("event", "display_phone_number", "current_limit", "violation_info",
                 "decision", "requested_verified_name", "rejection_reason", "ban_info",
                 "restriction_info", "lock_info", "alert_info",
                 "max_daily_conversation_per_phone", "max_phone_numbers_per_business")
CALLS_FIELD = "calls"


@dataclass(frozen=True, slots=True)
class Change:
    """What every notice of one change shares."""

    origin: Origin
    entry_id: str | None
    entry_time: datetime | None
    entry_stamp: Any  # `entry[].time` as sent: part of the digest ids
    field: str | None
    business: str | None
    phone_number_id: str | None

    def notice(self, notice_type: str, event_id: str, content: NoticeContent,
               raw: JSONObject, *, occurred_at: datetime | None = None,
               contact: str | None = None) -> NoticeEvent:
        origin = self.origin
        return NoticeEvent(
            event_id=event_id, type=notice_type, format=origin.format, field=self.field,
            receipt_ids=list(origin.receipt_ids), received_at=origin.received_at,
            occurred_at=occurred_at or self.entry_time, source=origin.source,
            account=origin.account, business_account_id=self.entry_id,
            phone_number_id=self.phone_number_id, business_number=self.business,
            contact_number=contact, content=content, raw=raw)

    def digest(self, notice_type: str, *parts: Any) -> str:
        """`<type>:<first 32 hex digits of the SHA-256 of the JSON of [entry id, entry
        time, field, *parts]>`, keys sorted: the same provider data gives the same id."""
        data = orjson.dumps([self.entry_id, self.entry_stamp, self.field, *parts],
                            option=orjson.OPT_SORT_KEYS)
        return f"{notice_type}:{hashlib.sha256(data).hexdigest()[:32]}"


def change_notices(change: Change, value: JSONObject) -> tuple[list[NoticeEvent], int]:
    """The notices of one change's value, and how many candidate objects it had."""
    notices: list[NoticeEvent] = []
    found = 0
    update = TEMPLATE_FIELDS.get(change.field or "")
    if update is not None:
        found += 1
        notices += _some(template_notice(change, update, value))
    elif change.field in ACCOUNT_FIELDS:
        found += 1
        notices += _some(account_notice(change, value))
    for name, read in (("user_preferences", preference_notice), ("calls", call_notice),
                       ("message_echoes", echo_notice)):
        for item in array(value, name):
            found += 1
            if isinstance(item, dict):
                notices += _some(read(change, item))
    message_ids = [i for m in array(value, "messages") if isinstance(m, dict)
                   if (i := text(m.get("id")))]
    for index, entry in enumerate(array(value, "errors")):
        found += 1
        if isinstance(entry, dict):
            notices.append(error_notice(change, entry, index, message_ids))
    return notices, found


def is_call_status(item: JSONObject, field: str | None) -> bool:
    """A `statuses[]` item that reports a call, not a message (`type: call`)."""
    kind = text(item.get("type"))
    return (kind is not None and kind.lower() == "call") or (
        field == CALLS_FIELD and kind is None and text(item.get("id")) is not None
        and str(item.get("id")).startswith("wacid."))


def _some(notice: NoticeEvent | None) -> list[NoticeEvent]:
    return [] if notice is None else [notice]


def template_notice(change: Change, update: str, value: JSONObject) -> NoticeEvent | None:
    template_id = text(value.get("message_template_id"))
    name = text(value.get("message_template_name"))
    if template_id is None and name is None:
        return None
    rejection = obj(value, "rejection_info") or {}
    content = TemplateStatusContent(
        update=update,
        event=nonempty(value.get("event")), template_id=template_id, template_name=name,
        language=nonempty(value.get("message_template_language")),
        category=nonempty(value.get("message_template_category")),
        reason=nonempty(value.get("reason")),
        rejection_detail=nonempty(rejection.get("reason")),
        recommendation=nonempty(rejection.get("recommendation")),
        previous_quality=nonempty(value.get("previous_quality_score")),
        new_quality=nonempty(value.get("new_quality_score")),
        previous_category=nonempty(value.get("previous_category")),
        new_category=nonempty(value.get("new_category")),
    )
    return change.notice(TEMPLATE_STATUS, change.digest(TEMPLATE_STATUS, value), content,
                         value)


def account_notice(change: Change, value: JSONObject) -> NoticeEvent | None:
    if not any(value.get(key) is not None for key in _ACCOUNT_KEYS):
        return None
    violation = obj(value, "violation_info") or {}
    content = AccountUpdateContent(
        event=nonempty(value.get("event")),
        display_phone_number=e164(value.get("display_phone_number")),
        current_limit=nonempty(value.get("current_limit")),
        violation_type=nonempty(violation.get("violation_type")),
        decision=nonempty(value.get("decision")),
        requested_name=nonempty(value.get("requested_verified_name")),
        rejection_reason=nonempty(value.get("rejection_reason")),
    )
    return change.notice(ACCOUNT_UPDATE, change.digest(ACCOUNT_UPDATE, value), content, value)


def preference_notice(change: Change, item: JSONObject) -> NoticeEvent | None:
    wa_id = text(item.get("wa_id"))
    value = nonempty(item.get("value"))
    if wa_id is None or value is None:
        return None
    category = nonempty(item.get("category"))
    when = timestamp(item.get("timestamp"))
    content = PreferencesContent(wa_id=wa_id, category=category, value=value.lower(),
                                 detail=nonempty(item.get("detail")))
    stamp = text(item.get("timestamp")) or ""
    return change.notice(
        CONTACT_PREFERENCES, f"preferences:{wa_id}:{category or ''}:{value.lower()}:{stamp}",
        content, item, occurred_at=when, contact=e164(wa_id))


def call_notice(change: Change, item: JSONObject) -> NoticeEvent | None:
    """A `calls[]` item: `event` is `connect` or `terminate`."""
    call_id = text(item.get("id"))
    event = (nonempty(item.get("event")) or "").lower()
    if call_id is None or event not in ("connect", "terminate"):
        return None
    notice_type = CALL_CONNECT if event == "connect" else CALL_TERMINATE
    return _call(change, item, call_id, event, notice_type, f"{call_id}:{event}")


def call_status_notice(change: Change, item: JSONObject) -> NoticeEvent | None:
    """A `statuses[]` item of `type: call` (ringing, accepted, rejected...)."""
    call_id = text(item.get("id"))
    if call_id is None:
        return None
    status = (nonempty(item.get("status")) or "").lower()
    return _call(change, item, call_id, "status", CALL_STATUS, f"{call_id}:status:{status}")


def _call(change: Change, item: JSONObject, call_id: str, event: str, notice_type: str,
          event_id: str) -> NoticeEvent:
    status = nonempty(item.get("status"))
    from_number, to_number = item.get("from"), item.get("to")
    recipient = e164(item.get("recipient_id"))
    direction = nonempty(item.get("direction"))
    # The customer: the other party than the business's number.
    contact = recipient or (e164(to_number) if direction == "BUSINESS_INITIATED"
                            else e164(from_number))
    content = CallContent(
        call_id=call_id, event=event, status=status.lower() if status else None,
        direction=direction, from_number=e164(from_number) or text(from_number),
        to_number=e164(to_number) or text(to_number),
        started_at=timestamp(item.get("start_time")), ended_at=timestamp(item.get("end_time")),
        duration_s=integer(item.get("duration")),
        biz_opaque_callback_data=text(item.get("biz_opaque_callback_data")),
        errors=errors(item),
    )
    return change.notice(notice_type, event_id, content, item,
                         occurred_at=timestamp(item.get("timestamp")), contact=contact)


def echo_notice(change: Change, item: JSONObject) -> NoticeEvent | None:
    message_id = text(item.get("id"))
    if message_id is None:
        return None
    event_type, content = message_content(item)
    known = event_type != "message.unknown"
    to_number = e164(item.get("to"))
    echo = EchoContent(
        message_id=message_id, message_type=text(item.get("type")), to_number=to_number,
        to_user_id=text(item.get("to_user_id")),
        message=content.model_dump(mode="json") if known else {},
    )
    return change.notice(MESSAGE_ECHO, f"echo:{message_id}", echo, item,
                         occurred_at=timestamp(item.get("timestamp")), contact=to_number)


def error_notice(change: Change, entry: JSONObject, index: int,
                 message_ids: list[str]) -> NoticeEvent:
    content = ProviderErrorContent(error=status_error(entry), href=text(entry.get("href")),
                                   message_ids=message_ids)
    return change.notice(PROVIDER_ERROR,
                         change.digest(PROVIDER_ERROR, index, entry, message_ids),
                         content, entry)
