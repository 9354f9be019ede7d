-- Provider error codes are not bounded to 32 bits (a code of 9999999999 was seen in
-- probing); an integer column made such a status unwritable. bigint holds every code that
-- fits the event model (the parsers keep a code beyond 64 bits as text in the raw body).
ALTER TABLE message_status_events ALTER COLUMN error_code TYPE bigint;
ALTER TABLE outbound_messages ALTER COLUMN error_code TYPE bigint;
