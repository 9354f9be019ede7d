"""Builders of webhook bodies in Qikchat's and Meta's shapes, from a seeded random source."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from qikflow.simulate.plan import Outcome

TEXTS = (
    "Is my order #{n} shipped?", "Hi, what are your timings today?", "Thank you 🙏",
    "Kitna time lagega delivery mein?", "Please share the invoice for order {n}",
    "ok", "Payment ho gaya, check karo", "Can I change the address?", "👍",
    "Where is my refund for #{n}?", "Is this available in size M?", "Haan ji",
    "Call me after 6 pm", "Product damaged aaya hai", "What is the price?",
)
OPTOUT_TEXTS = ("STOP", "stop", "Stop", "band karo", "Band karo", "BAND KARO")
NAMES = ("Asha Rao", "Vikram", "Priya S", "Rahul Verma", "", "Meera", "Arjun K", "Fatima", "")
MEDIA = {
    "image": (("image/jpeg", "photo.jpg"), ("image/png", "screen.png")),
    "video": (("video/mp4", "clip.mp4"),),
    "audio": (("audio/ogg; codecs=opus", "voice.ogg"), ("audio/mpeg", "note.mp3")),
    "document": (("application/pdf", "invoice.pdf"), ("application/pdf", "receipt.pdf")),
    "sticker": (("image/webp", "sticker.webp"),),
}
ERRORS = (
    (131026, "Message undeliverable"), (131047, "Re-engagement message"),
    (131051, "Unsupported message type"), (131000, "Something went wrong"),
)
# Pricing categories of outbound messages, chosen by the message id (no draw from the
# random source, so adding them changed no other body of a seeded run).
CATEGORIES = ("utility", "marketing", "authentication", "service")
ERROR_DETAILS = {
    131026: "Receiver is incapable of receiving this message",
    131047: "More than 24 hours have passed since the customer last replied",
    131051: "Message type is not supported",
    131000: "Something went wrong",
}
BUSINESS_NUMBER = "918041234567"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"


@dataclass(frozen=True, slots=True)
class Contact:
    number: str  # E.164, "+91..."
    name: str

    @property
    def wa_id(self) -> str:
        return self.number.lstrip("+")


def _digest(message_id: str) -> int:
    """A number fixed by the message id (stable across runs and processes)."""
    return sum(message_id.encode())


def _category(message_id: str) -> str:
    return CATEGORIES[_digest(message_id) % len(CATEGORIES)]


def _pricing(message_id: str) -> dict[str, Any]:
    category = _category(message_id)
    free = category == "service"
    return {"billable": not free, "pricing_model": "PMP",
            "type": "free_customer_service" if free else "regular", "category": category}


def _error(error: tuple[int, str]) -> dict[str, Any]:
    code, title = error
    return {"code": code, "title": title, "message": title,
            "error_data": {"details": ERROR_DETAILS.get(code, title)}}


def _context(message_id: str, replied_to: str | None) -> dict[str, Any]:
    """A reply (1 in 8 messages, when there is an outbound message to reply to), a forward
    (1 in 8) or an ad click with its referral (1 in 16), chosen by the message id: no draw
    from the random source, so adding them changed no other body of a seeded run."""
    pick = _digest(message_id) % 16
    if pick in (0, 1) and replied_to is not None:
        return {"context": {"from": BUSINESS_NUMBER, "id": replied_to}}
    if pick in (2, 3):
        return {"context": {"forwarded": True, "frequently_forwarded": pick == 3}}
    if pick == 4:
        ad = _digest(message_id) % 5
        return {"referral": {
            "source_url": f"https://fb.me/ad/{ad}", "source_id": f"12021000000000{ad}",
            "source_type": "ad", "headline": f"Offer {ad}", "body": "Tap to chat with us",
            "media_type": "image", "image_url": f"https://cdn.example/ads/{ad}.jpg",
            "ctwa_clid": f"clid-{message_id[-12:]}"}}
    return {}


def _user_id(contact: Contact) -> str:
    """The business-scoped user id Meta gives a contact, fixed by the number."""
    return f"IN.{int(contact.wa_id) * 7919 % 10**16:016d}"


def user_id_only(message_id: str) -> bool:
    """Whether a Meta body whose first message is `message_id` names its customer only by a
    business-scoped user id (1 in 32; no `from`, no `wa_id`), chosen by the id as
    `_context`."""
    return _digest(message_id) % 32 == 7


def _meta_sender(message_id: str, contact: Contact, anonymous: bool) -> dict[str, Any]:
    """Who sent a Meta message: `from`, or only `from_user_id`; 1 in 16 sent in a group."""
    if anonymous:
        return {"from_user_id": _user_id(contact)}
    sender: dict[str, Any] = {"from": contact.wa_id}
    if _digest(message_id) % 16 == 9:
        sender["group_id"] = f"Y2FwaV9ncm91cDpzaW0t{_digest(message_id) % 3}"
    return sender


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


class BodyFactory:
    """Makes ids, contacts and bodies; `rng` drives content, `ids` drives identifiers."""

    def __init__(self, rng: random.Random, ids: random.Random, start: datetime) -> None:
        self.rng = rng
        self.ids = ids
        self.start = start
        self._issued: set[str] = set()

    # -- ids, times, people -----------------------------------------------------------

    def _unique(self, make: Any) -> str:
        while True:
            value: str = make()
            if value not in self._issued:
                self._issued.add(value)
                return value

    def wamid(self) -> str:
        alphabet = string.ascii_uppercase + string.digits
        return self._unique(
            lambda: "wamid.HBgM" + "".join(self.ids.choices(alphabet, k=46)) + "A"
        )

    def qikchat_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return self._unique(lambda: "".join(self.ids.choices(alphabet, k=25)))

    def contact(self) -> Contact:
        return Contact(f"+91{self.ids.randint(7_000_000_000, 9_999_999_999)}",
                       self.rng.choice(NAMES))

    def iso(self, at_s: float) -> str:
        moment = self.start + timedelta(seconds=at_s)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def unix(self, at_s: float) -> str:
        return str(int((self.start + timedelta(seconds=at_s)).timestamp()))

    # -- incoming messages ------------------------------------------------------------

    def content(self, mix_type: str, meta: bool, reacted_to: str | None,
                own: str | None = None) -> tuple[str, Any]:
        """(wire `type`, content object) for a mix type such as `interactive.list_reply`;
        an edit or a revoke changes `own`, the customer's latest message."""
        rng = self.rng
        wire, _, variant = mix_type.partition(".")
        if wire == "text":
            text = rng.choice(OPTOUT_TEXTS if variant == "optout" else TEXTS)
            return "text", {"body": text.format(n=rng.randint(1000, 99999))}
        if wire in MEDIA:
            mime, filename = rng.choice(MEDIA[wire])
            media: dict[str, Any] = {"mime_type": mime}
            if meta:
                media["id"] = str(self.ids.randint(10**15, 10**16 - 1))
                media["sha256"] = "".join(self.ids.choices("0123456789abcdef", k=64))
            else:
                media["url"] = f"https://media.example.invalid/m/{self.ids.getrandbits(32):08x}/{filename}"
            if wire in ("image", "video") and rng.random() < 0.4:
                media["caption"] = rng.choice(("damaged box", "this one", "see this"))
            if wire == "document":
                media["filename"] = filename
            return wire, media
        if wire == "location":
            return wire, {"latitude": round(rng.uniform(8, 30), 6),
                          "longitude": round(rng.uniform(70, 88), 6),
                          "name": "Home", "address": "MG Road, Bengaluru"}
        if wire == "contacts":
            person = self.contact()
            return wire, [{"name": {"formatted_name": person.name or "Friend"},
                           "phones": [{"phone": person.number, "type": "CELL"}]}]
        if mix_type == "interactive.nfm_reply":
            answers = {"delivery_slot": rng.choice(("morning", "evening")),
                       "rating": str(rng.randint(1, 5)), "flow_token": f"tok-{rng.randint(1, 999)}"}
            return wire, {"type": variant, variant: {
                "response_json": orjson.dumps(answers).decode(), "body": "Sent",
                "name": "delivery_feedback"}}
        if wire == "system":
            new = f"91{self.ids.randint(7_000_000_000, 9_999_999_999)}"
            return wire, {"body": f"User changed number to {new}", "wa_id": new,
                          "type": "user_changed_number"}
        if wire == "edit":
            return wire, {"original_message_id": own or self.wamid(), "message": {
                "type": "text", "text": {"body": rng.choice(TEXTS).format(n=rng.randint(1, 99))}}}
        if wire == "revoke":
            return wire, {"original_message_id": own or self.wamid()}
        if wire == "interactive":
            reply = {"id": rng.choice(("track_order", "talk_to_agent", "opt_2")),
                     "title": rng.choice(("Track order", "Talk to us", "Option 2"))}
            if variant == "list_reply":
                reply["description"] = "Pick one"
            return wire, {"type": variant, variant: reply}
        if wire == "button":
            return wire, {"payload": "YES_CONFIRM", "text": rng.choice(("Yes", "Confirm"))}
        if wire == "reaction":
            return wire, {"message_id": reacted_to or self.wamid(),
                          "emoji": rng.choice(("👍", "❤️", "🙏", "😂"))}
        if wire == "order":
            return wire, {"catalog_id": "3051230987654", "text": "Please deliver fast",
                          "product_items": [{"product_retailer_id": f"SKU-{rng.randint(1, 99)}",
                                             "quantity": rng.randint(1, 3),
                                             "item_price": 499, "currency": "INR"}]}
        # A type nobody handles yet: the parser must route it to `message.unknown`.
        return "poll", {"question": "Which slot?", "options": ["10am", "4pm"]}

    def qikchat_message(self, message_id: str, contact: Contact, wire: str, content: Any,
                        at_s: float, wrapped: bool, replied_to: str | None = None) -> bytes:
        message = {"id": message_id, "from": BUSINESS_NUMBER, "type": wire,
                   "timestamp": self.iso(at_s), wire: content,
                   **_context(message_id, replied_to)}
        return self._envelope("whatsapp:message:in", message_id, contact, message, wrapped)

    def meta_messages(self, contact: Contact, items: list[tuple[str, str, Any]],
                      at_s: float, replied_to: str | None = None,
                      anonymous: bool = False) -> bytes:
        """One body of `items`; `anonymous`: the customer has no number in it, only a
        business-scoped user id."""
        messages = [{**_meta_sender(message_id, contact, anonymous), "id": message_id,
                     "timestamp": self.unix(at_s), "type": wire, wire: content,
                     **_context(message_id, replied_to)}
                    for message_id, wire, content in items]
        value = {"messaging_product": "whatsapp", "metadata": self._metadata(),
                 "contacts": [{"profile": {"name": contact.name},
                               **({} if anonymous else {"wa_id": contact.wa_id}),
                               "user_id": _user_id(contact)}],
                 "messages": messages}
        return self._meta(value)

    # -- statuses ---------------------------------------------------------------------

    def qikchat_status(self, message_id: str, contact: Contact, status: str,
                       times: dict[str, float], wrapped: bool,
                       error: tuple[int, str] | None) -> bytes:
        """A status body; `times` maps sent/delivered/read/processed to seconds into the run."""
        def stamp(name: str) -> str | None:
            return self.iso(times[name]) if name in times else None

        message: dict[str, Any] = {
            "type": "template", "status": status, "sentAt": stamp("sent"),
            "deliveredAt": stamp("delivered"), "readAt": stamp("read"),
            "processedAt": stamp("processed"), "lastUpdatedAt": self.iso(max(times.values())),
        }
        if error is not None:
            message["error"] = _error(error)
        if status == "sent" and (_digest(message_id) // len(CATEGORIES)) % 2:
            # Whether Qikchat forwards Meta's pricing is not known: half the bodies do.
            message["pricing"] = _pricing(message_id)
        return self._envelope("whatsapp:message:status", message_id, contact, message, wrapped)

    def meta_statuses(self, items: list[tuple[str, Contact, str, float, tuple[int, str] | None]]
                      ) -> bytes:
        statuses = []
        for message_id, contact, status, at_s, error in items:
            entry: dict[str, Any] = {"id": message_id, "status": status,
                                     "timestamp": self.unix(at_s), "recipient_id": contact.wa_id}
            if status == "sent":
                entry["conversation"] = {
                    "id": f"{self.ids.getrandbits(48):012x}",
                    "expiration_timestamp": self.unix(at_s + 86_400),
                    "origin": {"type": _category(message_id)}}
            if status in ("sent", "delivered"):
                entry["pricing"] = _pricing(message_id)
            if _digest(message_id) % 5 == 0:
                entry["biz_opaque_callback_data"] = f"campaign-{_digest(message_id) % 7}"
            if error is not None:
                entry["errors"] = [_error(error)]
            statuses.append(entry)
        value = {"messaging_product": "whatsapp", "metadata": self._metadata(),
                 "statuses": statuses}
        return self._meta(value)

    def error(self) -> tuple[int, str]:
        return self.rng.choice(ERRORS)

    # -- bodies no parser can route ---------------------------------------------------

    def malformed(self, variant: int, message_id: str) -> tuple[bytes, Outcome]:
        if variant == 0:  # cut off mid-way, as a broken proxy might deliver it
            cut = b'{"event": "whatsapp:message:in", "payload": {"id": "'
            return cut + message_id.encode(), "dlq"
        if variant == 1:  # valid JSON, but a batch in an array: not an envelope
            return _dumps([{"event": "whatsapp:message:in", "payload": {"id": message_id}}]), "dlq"
        # A well-formed envelope whose event name we do not know.
        return _dumps({"event": "whatsapp:template:status",
                       "payload": {"id": message_id, "status": "APPROVED"}}), "unknown"

    # -- envelopes --------------------------------------------------------------------

    def _envelope(self, event: str, message_id: str, contact: Contact, message: Any,
                  wrapped: bool) -> bytes:
        body = {"event": event, "payload": {
            "id": message_id, "name": "whatsapp",
            "contacts": [{"profile": {"name": contact.name}, "to": contact.number}],
            "message": message}}
        return _dumps({"message": body} if wrapped else body)

    def _metadata(self) -> dict[str, str]:
        return {"display_phone_number": BUSINESS_NUMBER, "phone_number_id": PHONE_NUMBER_ID}

    def _meta(self, value: dict[str, Any]) -> bytes:
        return _dumps({"object": "whatsapp_business_account", "entry": [
            {"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}]})
