-- Event contract version 2 (streams/events.py), the message state the agent publishes on
-- <prefix>.message.state (streams/outbound_state.py), and the 24-hour customer-service
-- window of every contact (streams/contact_window.py).

-- What a status carries from version 2 on; null where the provider sent none (and on the
-- rows stored before: their `raw` still holds whatever was sent).
ALTER TABLE message_status_events
    ADD COLUMN pricing_billable         boolean,
    ADD COLUMN pricing_model            text,
    ADD COLUMN pricing_type             text,
    ADD COLUMN conversation_origin      text,
    ADD COLUMN conversation_expires_at  timestamptz,
    ADD COLUMN biz_opaque_callback_data text,
    ADD COLUMN recipient_id             text,
    ADD COLUMN errors                   jsonb;   -- every error, as in the event
-- Billable messages and pricing categories over a send window.
CREATE INDEX message_status_events_pricing_idx
    ON message_status_events (received_at DESC, pricing_category)
    WHERE pricing_category IS NOT NULL;

-- The pricing category of the message (its first callback that names one), and which
-- distinct callbacks arrived: bits sent 1, delivered 2, read 4, failed 8.
ALTER TABLE outbound_messages
    ADD COLUMN pricing_category text,
    ADD COLUMN statuses         smallint NOT NULL DEFAULT 0,
    ADD COLUMN callbacks        smallint GENERATED ALWAYS AS (
        (statuses & 1 <> 0)::int + (statuses & 2 <> 0)::int + (statuses & 4 <> 0)::int
        + (statuses & 8 <> 0)::int
    ) STORED;
UPDATE outbound_messages o SET
    statuses = s.statuses,
    pricing_category = s.pricing_category
FROM (
    SELECT message_id,
           bit_or(CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 4
                              WHEN 'failed' THEN 8 ELSE 0 END)::smallint AS statuses,
           (array_agg(pricing_category ORDER BY received_at)
               FILTER (WHERE pricing_category <> ''))[1] AS pricing_category
    FROM message_status_events GROUP BY message_id
) s
WHERE s.message_id = o.message_id;

-- The 24-hour customer-service window of each contact: free-form messages may be sent
-- until closes_at. Out-of-order messages never shorten it.
CREATE TABLE contact_windows (
    account          text NOT NULL DEFAULT '',
    contact          text NOT NULL,
    opened_at        timestamptz NOT NULL,   -- the first incoming message of this window
    last_incoming_at timestamptz NOT NULL,   -- the latest incoming message
    closes_at        timestamptz NOT NULL,   -- last_incoming_at + 24 hours
    last_message_id  text NOT NULL,
    PRIMARY KEY (account, contact)
);
-- "Whose window closes in the next hour?"
CREATE INDEX contact_windows_closes_idx ON contact_windows (closes_at);
-- Contacts who wrote before this migration: a window from their latest message.
INSERT INTO contact_windows (account, contact, opened_at, last_incoming_at, closes_at,
                             last_message_id)
SELECT DISTINCT ON (account, contact) account, contact, at, at, at + interval '24 hours',
       message_id
FROM (SELECT account, contact, CASE WHEN occurred_at > received_at + interval '5 minutes'
                                        THEN received_at
                                        ELSE COALESCE(occurred_at, received_at) END AS at,
             message_id
      FROM inbound_messages WHERE contact IS NOT NULL) m
ORDER BY account, contact, at DESC, message_id;
