-- Issue 16: the `played` status on outbound messages, and the notices of
-- streams/notices.py: template updates, customers' preferences, and every notice once.

-- The earliest `played` callback (a voice message was played). A played message ranks as
-- `read` (status_rank 3), which it implies.
ALTER TABLE outbound_messages ADD COLUMN played_at timestamptz;

-- Every notice (<prefix>.template.status, .account.update, .contact.preferences,
-- .provider.error, .call.*, .message.echo), once per event id.
CREATE TABLE notices (
    event_id            text PRIMARY KEY,
    type                text NOT NULL,        -- template.status, call.terminate, ...
    account             text NOT NULL DEFAULT '',
    business_account_id text,                 -- entry[].id
    phone_number_id     text,
    business_number     text,
    contact             text,                 -- the customer, E.164, when there is one
    occurred_at         timestamptz,
    received_at         timestamptz NOT NULL,
    content             jsonb NOT NULL,       -- the type-specific fields of the notice
    raw                 jsonb NOT NULL        -- the provider object, unchanged
);
-- "Account updates of the last week", "calls of a contact".
CREATE INDEX notices_type_received_idx ON notices (type, received_at DESC);
CREATE INDEX notices_contact_idx ON notices (contact, received_at DESC) WHERE contact IS NOT NULL;

-- Every template review, quality and category change, once per event id.
CREATE TABLE template_events (
    event_id            text PRIMARY KEY,
    account             text NOT NULL DEFAULT '',
    business_account_id text,
    template_id         text,
    template_name       text,
    language            text,
    update              text NOT NULL,        -- status, quality or category
    event               text,                 -- APPROVED, REJECTED, PAUSED, ... (status)
    category            text,
    reason              text,
    rejection_detail    text,
    previous_quality    text,
    new_quality         text,
    previous_category   text,
    new_category        text,
    occurred_at         timestamptz,          -- entry[].time
    received_at         timestamptz NOT NULL
);
-- A template's history, newest first.
CREATE INDEX template_events_template_idx
    ON template_events (template_id, occurred_at DESC NULLS LAST);
CREATE INDEX template_events_name_idx
    ON template_events (template_name, language, occurred_at DESC NULLS LAST);

-- What each customer chose per category of messages (user_preferences): the latest value
-- wins, whatever order they arrive in. A marketing `stop` is also an opt-out
-- (contact_optouts); a later `resume` deletes that opt-out.
CREATE TABLE contact_preferences (
    account     text NOT NULL DEFAULT '',
    contact     text NOT NULL,
    category    text NOT NULL,                -- marketing_messages, ...
    value       text NOT NULL,                -- stop or resume
    changed_at  timestamptz NOT NULL,
    event_id    text NOT NULL,
    detail      text,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (account, contact, category)
);
