"""The version-2 fields of a status (`streams/parsers/_status_details.py`): read when they
are there and well formed; a malformed part is left out and costs nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.record import RawRecord
from streams.events import Conversation, Event, Pricing, StatusContent, StatusError
from streams.parsers import Parsed, parse_raw


def _status(**fields: Any) -> StatusContent:
    """The content of a Meta `failed` status with `fields` added to it."""
    status = {"id": "wamid.V2", "status": "failed", "timestamp": "1763643200",
              "recipient_id": "919900000001", **fields}
    body = orjson.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [
        {"value": {"metadata": {"display_phone_number": "918041234567"},
                   "statuses": [status]}}]}]})
    outcome = parse_raw(RawRecord(receipt_id="r-1", received_at_ms=1763643201000,
                                  source="qikchat", account="", body=body))
    assert isinstance(outcome, Parsed)
    (event,) = outcome.events
    assert isinstance(event.content, StatusContent)
    # Whatever was read, the event makes the round trip through its JSON.
    assert Event.from_json(event.to_json()) == event
    return event.content


@pytest.mark.parametrize("errors", [[], None, "boom", 42, {"code": 1}, [None, "x", 7]])
def test_errors_that_are_empty_or_malformed_give_no_error(errors: Any) -> None:
    content = _status(errors=errors)
    assert content.status == "failed"
    assert content.errors == []
    assert (content.error_code, content.error_title, content.error_detail) == (None, None, None)


def test_the_objects_among_malformed_errors_are_kept_in_order() -> None:
    content = _status(errors=["junk", {"code": 131049, "title": "Not delivered"},
                              {"code": str(2**70), "message": "huge code"}, {}])
    assert content.errors == [StatusError(code=131049, title="Not delivered"),
                              StatusError(code_text=str(2**70), message="huge code"),
                              StatusError()]
    # The first object is the one flattened, as in version 1.
    assert (content.error_code, content.error_title) == (131049, "Not delivered")


def test_pricing_with_an_unknown_category_is_kept_as_sent() -> None:
    content = _status(pricing={"billable": "false", "pricing_model": "PMP",
                               "category": "marketing_lite_2027", "type": ["x"]})
    assert content.pricing == Pricing(billable=False, pricing_model="PMP",
                                      category="marketing_lite_2027")
    assert content.pricing_category == "marketing_lite_2027"


@pytest.mark.parametrize("pricing", ["utility", [], 3, None])
def test_pricing_that_is_not_an_object_is_left_out(pricing: Any) -> None:
    assert _status(pricing=pricing).pricing is None


def test_a_conversation_with_a_bad_expiry_keeps_its_id() -> None:
    content = _status(conversation={"id": "c-1", "expiration_timestamp": "soon",
                                    "origin": "not an object"})
    assert content.conversation == Conversation(id="c-1")
    assert content.conversation_id == "c-1"


def test_a_conversation_expiry_is_read_as_utc() -> None:
    content = _status(conversation={"id": "c-2", "expiration_timestamp": 1763729546,
                                    "origin": {"type": "service"}})
    assert content.conversation == Conversation(
        id="c-2", expires_at=datetime.fromtimestamp(1763729546, UTC), origin_type="service")


def test_callback_data_is_kept_and_a_non_string_is_not() -> None:
    assert _status(biz_opaque_callback_data="campaign=7").biz_opaque_callback_data == (
        "campaign=7")
    assert _status(biz_opaque_callback_data={"a": 1}).biz_opaque_callback_data is None
