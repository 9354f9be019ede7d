"""Notices to table rows for the PostgreSQL sink (migrations/0006_notices.sql).

Every notice is kept once in `notices`; a template update also in `template_events`; a
customer's preferences as the latest value per category in `contact_preferences`. A
marketing `resume` clears the contact's opt-out (`RESUMED_OPTOUTS`); the marketing `stop`
reaches `contact_optouts` as an opt-out the opt-out agent publishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sinks._flat_columns import utc
from streams.notices import (
    NoticeEvent,
    PreferencesContent,
    TemplateStatusContent,
)

MARKETING = "marketing_messages"

UPSERT_NOTICE = """
INSERT INTO notices (event_id, type, account, business_account_id, phone_number_id,
    business_number, contact, occurred_at, received_at, content, raw)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::timestamptz[], $9::timestamptz[], $10::jsonb[], $11::jsonb[])
ON CONFLICT (event_id) DO NOTHING
"""

UPSERT_TEMPLATE = """
INSERT INTO template_events (event_id, account, business_account_id, template_id,
    template_name, language, update, event, category, reason, rejection_detail,
    previous_quality, new_quality, previous_category, new_category, occurred_at,
    received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
    $14::text[], $15::text[], $16::timestamptz[], $17::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
"""

# The latest preference of a category wins, whatever order they arrive in.
UPSERT_PREFERENCE = """
INSERT INTO contact_preferences AS p (account, contact, category, value, changed_at,
    event_id, detail, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
    $6::text[], $7::text[], $8::timestamptz[])
ON CONFLICT (account, contact, category) DO UPDATE SET
    (value, changed_at, event_id, detail, received_at) =
    (EXCLUDED.value, EXCLUDED.changed_at, EXCLUDED.event_id, EXCLUDED.detail,
     EXCLUDED.received_at)
    WHERE (EXCLUDED.changed_at, EXCLUDED.event_id) > (p.changed_at, p.event_id)
"""

# An opt-out no later than the contact's latest marketing `resume` is over. Run after the
# opt-outs and preferences of the batch, for the contacts the batch touched, so the outcome
# does not depend on which of the two arrived first.
RESUMED_OPTOUTS = f"""
DELETE FROM contact_optouts c USING contact_preferences p
WHERE (c.account, c.contact) IN (SELECT * FROM unnest($1::text[], $2::text[]))
  AND p.account = c.account AND p.contact = c.contact AND p.category = '{MARKETING}'
  AND p.value = 'resume' AND p.changed_at >= c.opted_out_at
"""


@dataclass(frozen=True, slots=True)
class NoticeRow:
    event_id: str
    type: str
    account: str
    business_account_id: str | None
    phone_number_id: str | None
    business_number: str | None
    contact: str | None
    occurred_at: datetime | None
    received_at: datetime
    content: str
    raw: str


@dataclass(frozen=True, slots=True)
class TemplateRow:
    event_id: str
    account: str
    business_account_id: str | None
    template_id: str | None
    template_name: str | None
    language: str | None
    update: str
    event: str | None
    category: str | None
    reason: str | None
    rejection_detail: str | None
    previous_quality: str | None
    new_quality: str | None
    previous_category: str | None
    new_category: str | None
    occurred_at: datetime | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class PreferenceRow:
    account: str
    contact: str
    category: str
    value: str
    changed_at: datetime
    event_id: str
    detail: str | None
    received_at: datetime


@dataclass
class NoticeRows:
    """The notice rows of a batch, at most one per primary key."""

    notices: dict[str, NoticeRow] = field(default_factory=dict)
    templates: dict[str, TemplateRow] = field(default_factory=dict)
    preferences: dict[tuple[str, str, str], PreferenceRow] = field(default_factory=dict)

    def add(self, notice: NoticeEvent, content_json: str, raw_json: str) -> None:
        received = utc(notice.received_at)
        self.notices.setdefault(notice.event_id, NoticeRow(
            notice.event_id, notice.type, notice.account, notice.business_account_id,
            notice.phone_number_id, notice.business_number, notice.contact_number,
            utc(notice.occurred_at), received, content_json, raw_json))
        content = notice.content
        if isinstance(content, TemplateStatusContent):
            self.templates.setdefault(notice.event_id, TemplateRow(
                notice.event_id, notice.account, notice.business_account_id,
                content.template_id, content.template_name, content.language, content.update,
                content.event, content.category, content.reason, content.rejection_detail,
                content.previous_quality, content.new_quality, content.previous_category,
                content.new_category, utc(notice.occurred_at), received))
        elif isinstance(content, PreferencesContent):
            row = preference_row(notice, content)
            if row is not None:
                key = (row.account, row.contact, row.category)
                current = self.preferences.get(key)
                if current is None or (row.changed_at, row.event_id) > (
                        current.changed_at, current.event_id):
                    self.preferences[key] = row


def preference_row(notice: NoticeEvent, content: PreferencesContent) -> PreferenceRow | None:
    """The row of a preference; None without a contact number, category or value (the
    notice is still in `notices`)."""
    if not notice.contact_number or not content.category or not content.value:
        return None
    return PreferenceRow(
        notice.account, notice.contact_number, content.category, content.value,
        utc(notice.occurred_at or notice.received_at), notice.event_id, content.detail,
        utc(notice.received_at))
