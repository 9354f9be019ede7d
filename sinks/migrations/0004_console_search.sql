-- Indexes the operator console's message search needs (qikflow/operations/messages.py):
-- newest first over a time range alone, and outgoing messages by account. Searches by
-- message id use the primary keys; by customer number and incoming by account, the
-- indexes of 0001.
CREATE INDEX IF NOT EXISTS inbound_messages_received_idx ON inbound_messages (received_at DESC);
CREATE INDEX IF NOT EXISTS outbound_messages_updated_idx ON outbound_messages (updated_at DESC);
CREATE INDEX IF NOT EXISTS outbound_messages_account_updated_idx
    ON outbound_messages (account, updated_at DESC);
