"""Source-format parsers: raw webhook bytes in, normalised events (or why not) out.

`parse_raw` decodes the body once with orjson, recognises the format and hands the object
to one pure module per format:

- Qikchat's envelope `{"event", "payload"}`, also wrapped as `{"message": {"event", ...}}`
  (`qikchat.py`);
- Meta's Cloud API body `{"object": "whatsapp_business_account", "entry": [...]}`
  (`meta.py`).

It never raises. Every body ends in exactly one outcome: Parsed (the per-type topics),
Unrecognised (a JSON object that is no known event: `<prefix>.unknown`) or Undecodable
(not JSON, not an object, or a parser bug: `<prefix>.dlq`), so no body is ever lost.
A body nested deeper than MAX_NESTING levels is Unrecognised: its events would carry the
nesting in `raw`, and the consumers' JSON readers (pydantic's among them) refuse
documents nested a little deeper than a hundred levels; real webhooks nest under ten.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson

from streams.parsers import meta, qikchat
from streams.parsers._outcome import Outcome, Parsed, Undecodable, Unrecognised
from streams.parsers.json_fields import nested_deeper_than, shown

if TYPE_CHECKING:
    from ingest.record import RawRecord

__all__ = ["MAX_NESTING", "Outcome", "Parsed", "Undecodable", "Unrecognised", "parse_raw"]

MAX_NESTING = 64

logger = logging.getLogger(__name__)


def parse_raw(record: RawRecord) -> Outcome:
    """Parse one raw record into events; never raises, whatever the bytes."""
    try:
        body = orjson.loads(record.body)
    except orjson.JSONDecodeError as exc:
        return Undecodable(f"not JSON: {exc}")
    if not isinstance(body, dict):
        return Undecodable(f"JSON {type(body).__name__}, not an object")
    if nested_deeper_than(body, MAX_NESTING, record.body):
        return Unrecognised(f"JSON nested deeper than {MAX_NESTING} levels")
    try:
        if body.get("object") == meta.OBJECT:
            return meta.parse_body(body, record)
        if "event" in body:
            return qikchat.parse_envelope(body, record)
        wrapped = body.get("message")
        if isinstance(wrapped, dict) and "event" in wrapped:
            return qikchat.parse_envelope(wrapped, record)
    # The one broad catch: the parsers are written not to raise on any input, so an error
    # here is a bug in them. The worker acks every record, so turning the bug into an
    # outcome sends the body to the dead-letter topic for replay instead of losing it.
    except Exception as exc:
        logger.exception("parser failed on receipt %s", record.receipt_id)
        return Undecodable(f"parser error: {type(exc).__name__}: {exc}")
    if "object" in body:
        return Unrecognised(f"unknown `object` {shown(body['object'])}")
    return Unrecognised("no `event`, `message.event` or Meta `object` key")
