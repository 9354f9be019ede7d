-- The operational store: current state of every message, one row per message id.
-- Every write is an idempotent upsert: the sink may deliver an event more than once.

-- Incoming messages from customers. A duplicate webhook keeps the first row unchanged.
CREATE TABLE inbound_messages (
    message_id      text PRIMARY KEY,
    event_id        text NOT NULL,
    account         text NOT NULL DEFAULT '',
    contact         text,                 -- customer number, E.164
    contact_name    text,                 -- WhatsApp profile name
    business_number text,
    type            text NOT NULL,        -- text, image, ..., unknown (without `message.`)
    text            text,                 -- body, button/list title, reaction emoji, order text
    media_url       text,
    mime_type       text,
    caption         text,
    content         jsonb NOT NULL,       -- the type-specific fields of the event
    occurred_at     timestamptz,          -- provider timestamp
    received_at     timestamptz NOT NULL, -- when ingest received the webhook
    raw             jsonb NOT NULL        -- the provider's message object, unchanged
);
-- A contact's conversation, newest first.
CREATE INDEX inbound_messages_contact_idx ON inbound_messages (contact, received_at DESC);
-- Recent messages of an account (dashboards, "last hour" queries).
CREATE INDEX inbound_messages_account_received_idx ON inbound_messages (account, received_at DESC);

-- Every status change of a message the business sent, once per (message, status).
CREATE TABLE message_status_events (
    message_id       text NOT NULL,
    status           text NOT NULL,       -- sent, delivered, read, failed, unknown
    event_id         text NOT NULL,
    account          text NOT NULL DEFAULT '',
    contact          text,
    original_status  text,                -- the provider's value when status is unknown
    occurred_at      timestamptz,
    received_at      timestamptz NOT NULL,
    error_code       integer,
    error_title      text,
    error_detail     text,
    conversation_id  text,
    pricing_category text,
    raw              jsonb NOT NULL,
    PRIMARY KEY (message_id, status)
);
-- Failures by error code in a time window.
CREATE INDEX message_status_events_failed_idx ON message_status_events (received_at DESC, error_code)
    WHERE status = 'failed';

-- Current state of every outbound message, whatever the order and number of its statuses.
-- status_rank is the highest reached (sent 1 < delivered 2 < read 3; 0 when only `failed`
-- arrived) and only ever grows; timestamps keep the earliest known; failed only turns on.
CREATE TABLE outbound_messages (
    message_id   text PRIMARY KEY,
    account      text NOT NULL DEFAULT '',
    contact      text,
    status_rank  smallint NOT NULL,
    status       text GENERATED ALWAYS AS (
        CASE status_rank WHEN 3 THEN 'read' WHEN 2 THEN 'delivered' WHEN 1 THEN 'sent'
                         ELSE 'failed' END
    ) STORED,
    failed       boolean NOT NULL DEFAULT false,
    error_code   integer,
    error_title  text,
    sent_at      timestamptz,
    delivered_at timestamptz,
    read_at      timestamptz,
    failed_at    timestamptz,
    updated_at   timestamptz NOT NULL     -- time of the latest status event applied
);
-- Messages of a contact, newest first.
CREATE INDEX outbound_messages_contact_idx ON outbound_messages (contact, updated_at DESC);
-- Funnel over a send window.
CREATE INDEX outbound_messages_sent_idx ON outbound_messages (sent_at);
-- Messages stuck below `read` that changed recently ("delivered but unread in the last day").
CREATE INDEX outbound_messages_status_updated_idx ON outbound_messages (status_rank, updated_at DESC);

-- Contacts who asked to stop receiving messages (from the opt-out agent), one row each.
CREATE TABLE contact_optouts (
    account       text NOT NULL DEFAULT '',
    contact       text NOT NULL,
    contact_name  text,
    opted_out_at  timestamptz NOT NULL,   -- earliest opt-out seen
    message_id    text NOT NULL,          -- the message that opted out first
    event_id      text NOT NULL,
    matched       text NOT NULL,          -- the phrase that matched, e.g. `stop`
    text          text NOT NULL,
    received_at   timestamptz NOT NULL,
    PRIMARY KEY (account, contact)
);
