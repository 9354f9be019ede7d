"""Reply context and ad referral of incoming messages (`streams/parsers/_message_context.py`),
in both formats; malformed parts are left out, messages without them unchanged on the wire."""

from __future__ import annotations

import orjson
import pytest

from streams.events import Event, Referral, ReplyContext
from streams.parsers._message_context import referral, reply_context
from tests.streams.fixtures import event, events


def test_a_reply_a_forward_and_an_ad_click_with_a_referred_product() -> None:
    reply, forwarded, ad = events("meta-context-referral")
    assert reply.context == ReplyContext(message_id="wamid.META.OUT1",
                                         from_number="918041234567")
    assert reply.referral is None
    assert forwarded.context == ReplyContext(forwarded=True, frequently_forwarded=True)
    assert ad.context == ReplyContext(
        message_id="wamid.META.CATALOG1", from_number="918041234567",
        referred_catalog_id="194836987003835", referred_product_id="kurta-blue-m")
    assert ad.referral == Referral(
        source_id="120210000000001", source_type="ad", source_url="https://fb.me/ad/123",
        headline="Diwali sale", body="30% off all kurtas", media_type="image",
        image_url="https://cdn.example/ad.jpg",
        ctwa_clid="ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-"
                  "eM-GABDLOPaOdRMv-_zfUQ2a")


def test_qikchat_messages_carry_them_too() -> None:
    reply = event("qikchat-in-text-reply")
    assert reply.context == ReplyContext(message_id="wamid.QK.OUT7",
                                         from_number="918041234567")
    assert reply.referral == Referral(source_id="120210000000002", source_type="post",
                                      source_url="https://instagram.com/p/xyz",
                                      ctwa_clid="qk-clid-1")  # an empty headline is none


def test_a_message_without_them_is_unchanged_on_the_wire() -> None:
    plain = event("qikchat-in-text")
    assert (plain.context, plain.referral) == (None, None)
    assert not {"context", "referral"} & set(orjson.loads(plain.to_json()))
    ad = events("meta-context-referral")[2]
    wire = orjson.loads(ad.to_json())
    assert wire["referral"]["source_id"] == "120210000000001"
    assert Event.from_json(ad.to_json()) == ad


@pytest.mark.parametrize("message", [
    {"context": "wamid.X"},
    {"context": {}},
    {"context": {"forwarded": "yes", "referred_product": ["x"]}},
    {"referral": None},
    {"referral": {"headline": "", "body": ["x"]}},
])
def test_malformed_or_empty_parts_are_left_out(message: dict[str, object]) -> None:
    assert reply_context(message) is None
    assert referral(message) is None


def test_a_part_of_the_wrong_type_is_dropped_and_the_rest_kept() -> None:
    found = reply_context({"context": {"id": "wamid.Y", "forwarded": "true"}})
    assert found == ReplyContext(message_id="wamid.Y")
    assert referral({"referral": {"source_id": 120210, "ctwa_clid": ["x"]}}) == Referral(
        source_id="120210")
