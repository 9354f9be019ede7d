"""Qikchat webhook bodies for the console tests: one incoming message, statuses of one sent
message, and an event name today's parser does not know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

BUSINESS = "918041234567"
# Learned by `_learner.py` once its flag file exists; unknown before.
NEW_EVENT = "whatsapp:message:incoming"


def _envelope(event: str, message_id: str, number: str, message: dict[str, Any]) -> bytes:
    return orjson.dumps({"event": event, "payload": {
        "id": message_id, "contacts": [{"profile": {"name": "Asha"}, "to": number}],
        "message": message}})


def iso(moment: datetime) -> str:
    """A time as Qikchat writes it: `2026-05-01T09:15:02.412Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ago(seconds: float) -> str:
    """The time `seconds` before now, as Qikchat writes it (the screenshots show real times)."""
    return iso(datetime.now(UTC) - timedelta(seconds=seconds))


def incoming(message_id: str, number: str, text: str, *, event: str = "whatsapp:message:in",
             wire: str = "text", content: dict[str, Any] | None = None) -> bytes:
    """An incoming message the customer sent two seconds ago."""
    message = {"id": message_id, "from": BUSINESS, "type": wire,
               "timestamp": ago(2), wire: content or {"body": text}}
    return _envelope(event, message_id, number, message)


def status(message_id: str, number: str, name: str, at: str,
           error: tuple[int, str] | None = None) -> bytes:
    times = {"sent": "sentAt", "delivered": "deliveredAt", "read": "readAt"}
    message: dict[str, Any] = {"type": "template", "status": name, "lastUpdatedAt": at}
    if name in times:
        message[times[name]] = at
    if error is not None:
        message["error"] = {"code": error[0], "title": error[1]}
    return _envelope("whatsapp:message:status", message_id, number, message)
