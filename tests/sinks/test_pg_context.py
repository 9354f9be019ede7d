"""An incoming message's reply context and ad referral in `inbound_messages` (migration
0007), from both formats; messages without them keep the columns null."""

from __future__ import annotations

import asyncpg

from tests.sinks.harness import write_postgres
from tests.streams.fixtures import events

COLUMNS = ("context_message_id, forwarded, frequently_forwarded, referred_catalog_id, "
           "referred_product_id, referral_source_id, referral_source_type, "
           "referral_source_url, referral_headline, referral_body, referral_media_type, "
           "referral_media_url, ctwa_clid")


async def test_reply_context_and_referral_columns(database_url: str) -> None:
    stored = [*events("meta-context-referral"), *events("qikchat-in-text-reply"),
              *events("qikchat-in-text")]
    await write_postgres(database_url, stored)
    connection = await asyncpg.connect(database_url)
    try:
        rows = {row["message_id"]: dict(row) for row in await connection.fetch(
            f"SELECT message_id, {COLUMNS} FROM inbound_messages")}
        attributed = await connection.fetch(
            "SELECT referral_source_id, count(*) FROM inbound_messages "
            "WHERE referral_source_id IS NOT NULL GROUP BY 1 ORDER BY 1")
    finally:
        await connection.close()
    reply, forwarded, ad = (rows["wamid.META.REPLY1"], rows["wamid.META.FWD1"],
                            rows["wamid.META.AD1"])
    assert reply["context_message_id"] == "wamid.META.OUT1"
    assert (reply["forwarded"], reply["referral_source_id"]) == (None, None)
    assert (forwarded["forwarded"], forwarded["frequently_forwarded"]) == (True, True)
    assert forwarded["context_message_id"] is None
    assert (ad["referred_catalog_id"], ad["referred_product_id"]) == ("194836987003835",
                                                                      "kurta-blue-m")
    assert (ad["referral_source_type"], ad["referral_headline"], ad["referral_body"]) == (
        "ad", "Diwali sale", "30% off all kurtas")
    assert (ad["referral_media_type"], ad["referral_media_url"]) == (
        "image", "https://cdn.example/ad.jpg")
    assert ad["ctwa_clid"].startswith("ARAkLkA8")
    qikchat = rows["wamid.QK.REPLY1"]
    assert (qikchat["context_message_id"], qikchat["referral_source_type"],
            qikchat["ctwa_clid"], qikchat["referral_headline"]) == (
        "wamid.QK.OUT7", "post", "qk-clid-1", None)
    plain = next(row for mid, row in rows.items() if mid not in (
        "wamid.META.REPLY1", "wamid.META.FWD1", "wamid.META.AD1", "wamid.QK.REPLY1"))
    assert all(value is None for name, value in plain.items() if name != "message_id")
    assert [tuple(row) for row in attributed] == [("120210000000001", 1),
                                                   ("120210000000002", 1)]
