"""What WhatsApp's error codes mean, for a failed status shown to an operator.

The codes are those of Meta's Cloud API (Qikchat passes them through); the texts are
short paraphrases with what to do. A code not listed here is shown with the provider's own
title and a pointer to Meta's reference.
"""

from __future__ import annotations

REFERENCE = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes"

MEANINGS: dict[int, str] = {
    0: "Authentication failed: the access token could not be validated.",
    3: "The app lacks the capability or permission for this API method.",
    4: "Too many API calls by the app: wait, then retry.",
    10: "Permission denied: the app or the number lacks a permission.",
    100: "Invalid parameter in the send request.",
    190: "The access token expired: get a new one.",
    368: "The account is temporarily blocked for a policy violation.",
    80007: "Rate limit of the WhatsApp Business Account reached: retry later.",
    130429: "Throughput limit of the phone number reached: slow down and retry.",
    130472: "The customer's number is part of a Meta experiment: not delivered.",
    130497: "The business cannot message customers in this country.",
    131000: "Something went wrong at Meta: retry; if it persists, contact support.",
    131005: "Access denied: the token lacks the permission.",
    131008: "A required parameter is missing from the request.",
    131009: "A parameter value is invalid.",
    131016: "WhatsApp service temporarily unavailable: retry later.",
    131021: "The recipient is the sender's own number.",
    131026: "Message undeliverable: the number is not on WhatsApp, has an old app, or has "
            "not accepted the terms.",
    131031: "The business account is locked or restricted.",
    131042: "Payment problem on the business account (payment method, credit line).",
    131045: "The phone number is not registered or its certificate is wrong.",
    131047: "More than 24 hours since the customer last wrote: only a template may be sent.",
    131048: "Spam rate limit hit: too many messages were blocked or reported.",
    131049: "Meta did not deliver, to keep engagement healthy (marketing limits): retry "
            "later, not at once.",
    131050: "The customer stopped marketing messages from this business.",
    131051: "Unsupported message type.",
    131052: "The media sent by the customer could not be downloaded.",
    131053: "The media could not be uploaded (type or size not supported).",
    131056: "Too many messages to the same customer in a short time: wait and retry.",
    131057: "The business account is in maintenance mode.",
    132000: "Template: the number of parameters does not match the template.",
    132001: "Template: it does not exist in this language, or is not approved.",
    132005: "Template: the text with its parameters is too long.",
    132007: "Template: the content breaks a formatting policy.",
    132012: "Template: a parameter is in the wrong format.",
    132015: "Template: paused for low quality.",
    132016: "Template: disabled for low quality.",
    132068: "Flow is blocked.",
    132069: "Flow is throttled.",
    133000: "Phone number deregistration incomplete: register it again.",
    133010: "The phone number is not registered on the Cloud API.",
    135000: "Generic user error: check the request.",
}


def meaning(code: int | None, title: str | None = None) -> str:
    """What `code` means; for an unlisted one, the provider's title and where to look."""
    if code is None:
        return title or ""
    known = MEANINGS.get(code)
    if known is not None:
        return known
    said = f"{title}. " if title else ""
    return f"{said}Code {code} is not in qikflow's list; see {REFERENCE}"
