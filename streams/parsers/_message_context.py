"""An incoming message's reply context and ad referral, from Meta's `context` and
`referral` objects (Qikchat's `payload.message` copies them).

Each is read only when its object is there; fields of the wrong type are left out (the
message is still in `raw`), and an object with nothing usable gives None.
"""

from __future__ import annotations

from streams.events import Referral, ReplyContext
from streams.parsers.json_fields import JSONObject, nonempty, obj, text

_REFERRAL_FIELDS = ("source_id", "source_type", "source_url", "headline", "body",
                    "media_type", "image_url", "video_url", "thumbnail_url", "ctwa_clid")


def reply_context(message: JSONObject) -> ReplyContext | None:
    context = obj(message, "context")
    if context is None:
        return None
    product = obj(context, "referred_product") or {}
    found = ReplyContext(
        message_id=text(context.get("id")),
        from_number=text(context.get("from")),
        forwarded=_flag(context.get("forwarded")),
        frequently_forwarded=_flag(context.get("frequently_forwarded")),
        referred_catalog_id=text(product.get("catalog_id")),
        referred_product_id=text(product.get("product_retailer_id")),
    )
    return found if found.model_dump(exclude_none=True) else None


def referral(message: JSONObject) -> Referral | None:
    sent = obj(message, "referral")
    if sent is None:
        return None
    found = Referral(**{name: nonempty(sent.get(name)) for name in _REFERRAL_FIELDS})
    return found if found.model_dump(exclude_none=True) else None


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
