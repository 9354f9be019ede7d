"""The published contract of the two state topics, as models: `<prefix>.message.state`
(`OutboundState.to_record`) and `<prefix>.contact.window` (`ContactWindow.to_record`).

Their JSON Schemas are generated from these (`streams/schemas.py`); a consumer may parse
records with them (`MessageStateRecord.model_validate_json(record.value)`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.events import SCHEMA_VERSION


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this contract.")


class MessageStateRecord(_Record):
    """The current state of one outbound message; the topic is compacted, keyed by message
    id, one record per change."""

    type: Literal["message.state"] = "message.state"
    message_id: str
    account: str
    contact: str | None = Field(description="The recipient's number, E.164; else their "
                                "business-scoped user id, when the provider sent no number.")
    status: Literal["sent", "delivered", "read", "failed"] = Field(
        description="The highest status reached (sent < delivered < read), or `failed` "
        "when only a failure arrived. A message can be `failed` and read: see `failed`.")
    status_rank: int = Field(description="sent 1, delivered 2, read 3; 0 for only failed.")
    failed: bool = Field(description="A `failed` callback arrived.")
    error_code: int | None = Field(description="The error of the failed callback.")
    error_title: str | None
    pricing_category: str | None = Field(description="The first category a callback named.")
    sent_at: datetime | None = Field(description="The earliest time known for each status.")
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    updated_at: datetime = Field(description="The time of the latest callback applied.")
    statuses_seen: list[Literal["sent", "delivered", "read", "failed"]] = Field(
        description="The distinct callbacks that arrived (copies count once).")
    callbacks: int = Field(description="How many distinct callbacks arrived.")
    played_at: datetime | None = Field(
        None, description="The earliest `played` callback (a voice message was played); a "
        "played message ranks as `read`. Absent from records before `played` was known.")


class ContactWindowRecord(_Record):
    """The 24-hour customer-service window of one contact of one account; the topic is
    compacted, keyed by `<account>:<contact>`, one record per change."""

    type: Literal["contact.window"] = "contact.window"
    account: str
    contact: str = Field(description="The contact's number, E.164; else their "
                         "business-scoped user id, when the provider sent no number.")
    opened_at: datetime = Field(description="The first incoming message of this window.")
    closes_at: datetime = Field(
        description="24 hours after the latest incoming message: free-form messages may be "
        "sent until then.")
    last_incoming_at: datetime
    last_message_id: str
