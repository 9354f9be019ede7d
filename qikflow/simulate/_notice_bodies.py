"""Simulated Meta bodies that are not incoming messages nor outbound lifecycles: template
and account updates, marketing preferences, value-level errors, calls, business app
echoes, and the `played` and `deleted` statuses, each with the events it must give.

The event ids are restated from the contract (docs/topics.md, "Notices"), not imported
from the parser, so that the simulator checks the parser instead of agreeing with it;
`tests/simulate/test_generator.py` parses every body and compares.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import orjson

from qikflow.simulate._bodies import BUSINESS_NUMBER, PHONE_NUMBER_ID, WABA_ID, Contact
from qikflow.simulate.plan import ExpectedEvent

NOTICE_KINDS = (
    "template.status", "account.update", "contact.preferences.stop",
    "contact.preferences.resume", "provider.error", "call.connect", "call.terminate",
    "call.status", "message.echo", "status.played", "status.deleted",
)
TEMPLATE_EVENTS = ("APPROVED", "REJECTED", "PAUSED", "DISABLED")
ACCOUNT_EVENTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("phone_number_quality_update", {"event": "FLAGGED",
                                     "current_limit": "TIER_1K"}),
    ("account_update", {"event": "ACCOUNT_VIOLATION",
                        "violation_info": {"violation_type": "SPAM"}}))
CALL_STATUSES = ("RINGING", "ACCEPTED", "REJECTED")


def _digest(notice_type: str, stamp: int, field: str, *parts: Any) -> str:
    data = orjson.dumps([WABA_ID, stamp, field, *parts], option=orjson.OPT_SORT_KEYS)
    return f"{notice_type}:{hashlib.sha256(data).hexdigest()[:32]}"


def _body(field: str, value: dict[str, Any], stamp: int | None = None) -> bytes:
    entry: dict[str, Any] = {"id": WABA_ID, "changes": [{"field": field, "value": value}]}
    if stamp is not None:
        entry["time"] = stamp
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [entry]})


def _value(contact: Contact | None = None, **lists: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": {
        "display_phone_number": BUSINESS_NUMBER, "phone_number_id": PHONE_NUMBER_ID}}
    if contact is not None:
        value["contacts"] = [{"profile": {"name": contact.name}, "wa_id": contact.wa_id}]
    return {**value, **lists}


def notice_body(kind: str, rng: random.Random, new_id: str, contact: Contact, stamp: int,
                outbound_id: str | None, inbound_id: str | None
                ) -> tuple[bytes, tuple[ExpectedEvent, ...], tuple[str, ...]]:
    """The body of one notice kind, its expected events, and the opt-out ids it causes
    (the `message_id` of the opt-out: the notice's event id).

    `new_id` is a fresh unique id (a template id, a call id, an echo's message id);
    `stamp` the Unix time of the webhook; `outbound_id`/`inbound_id` a message sent or
    received earlier (`status.played` and `status.deleted` need one)."""
    if kind == "template.status":
        field = "message_template_status_update"
        value = {"event": rng.choice(TEMPLATE_EVENTS), "message_template_id": int(new_id),
                 "message_template_name": f"template_{new_id[-4:]}",
                 "message_template_language": "en_US", "reason": "NONE",
                 "message_template_category": "UTILITY"}
        event = ExpectedEvent(_digest(kind, stamp, field, value), kind, "")
        return _body(field, value, stamp), (event,), ()
    if kind == "account.update":
        field, value = rng.choice(ACCOUNT_EVENTS)
        value = {**value, "display_phone_number": BUSINESS_NUMBER, "serial": new_id}
        event = ExpectedEvent(_digest(kind, stamp, field, value), kind, "")
        return _body(field, value, stamp), (event,), ()
    if kind.startswith("contact.preferences."):
        choice = kind.rpartition(".")[2]
        item = {"wa_id": contact.wa_id, "detail": f"User requested to {choice} marketing "
                "messages", "category": "marketing_messages", "value": choice,
                "timestamp": stamp}
        event_id = f"preferences:{contact.wa_id}:marketing_messages:{choice}:{stamp}"
        body = _body("user_preferences", _value(contact, user_preferences=[item]))
        optouts = (event_id,) if choice == "stop" else ()
        return body, (ExpectedEvent(event_id, "contact.preferences", ""),), optouts
    if kind == "provider.error":
        field = "messages"
        entry = {"code": 130429, "title": "Rate limit hit", "message": f"(#130429) {new_id}",
                 "error_data": {"details": "Cloud API message throughput has been reached."}}
        event = ExpectedEvent(_digest(kind, stamp, field, 0, entry, []), kind, "")
        return _body(field, _value(errors=[entry]), stamp), (event,), ()
    if kind.startswith("call."):
        return _call(kind, rng, f"wacid.SIM{new_id}", contact, stamp)
    if kind == "message.echo":
        echo = {"from": BUSINESS_NUMBER, "to": contact.wa_id, "id": f"wamid.ECHO{new_id}",
                "timestamp": str(stamp), "type": "text",
                "text": {"body": "Sent from the WhatsApp Business app"}}
        event = ExpectedEvent(f"echo:wamid.ECHO{new_id}", kind, "")
        return _body("smb_message_echoes", _value(contact, message_echoes=[echo])), (event,), ()
    # status.played of an outbound message, status.deleted of an incoming one.
    status = kind.partition(".")[2]
    message_id = (outbound_id if status == "played" else inbound_id) or f"wamid.SIM{new_id}"
    item = {"id": message_id, "status": status, "timestamp": str(stamp),
            "recipient_id": contact.wa_id}
    event = ExpectedEvent(f"{message_id}:{status}", kind, message_id)
    return _body("messages", _value(contact, statuses=[item])), (event,), ()


def _call(kind: str, rng: random.Random, call_id: str, contact: Contact, stamp: int
          ) -> tuple[bytes, tuple[ExpectedEvent, ...], tuple[str, ...]]:
    if kind == "call.status":
        status = rng.choice(CALL_STATUSES)
        item: dict[str, Any] = {"id": call_id, "timestamp": str(stamp), "type": "call",
                                "status": status, "recipient_id": contact.wa_id}
        body = _body("calls", _value(contact, statuses=[item]))
        return body, (ExpectedEvent(f"{call_id}:status:{status.lower()}", kind, ""),), ()
    event = kind.partition(".")[2]
    item = {"id": call_id, "from": contact.wa_id, "to": BUSINESS_NUMBER, "event": event,
            "timestamp": str(stamp), "direction": "USER_INITIATED"}
    if event == "terminate":
        item.update(status="COMPLETED", start_time=str(stamp - 65), end_time=str(stamp),
                    duration=65)
    body = _body("calls", _value(contact, calls=[item]))
    return body, (ExpectedEvent(f"{call_id}:{event}", kind, ""),), ()
