-- When each row was first written: with received_at it gives the pipeline's end-to-end
-- latency (ingest receipt to row), which bench/e2e reports and operators can watch.
-- clock_timestamp(), not now(): a batch is one transaction, and rows should carry the
-- moment they were written, not the moment the transaction began.
ALTER TABLE inbound_messages
    ADD COLUMN stored_at timestamptz NOT NULL DEFAULT clock_timestamp();
ALTER TABLE message_status_events
    ADD COLUMN stored_at timestamptz NOT NULL DEFAULT clock_timestamp();
