-- Issue 16 §2: an incoming message's reply context and ad referral (Event.context and
-- Event.referral), null where the message has none and on rows stored before (their `raw`
-- still holds whatever was sent).
ALTER TABLE inbound_messages
    ADD COLUMN context_message_id   text,     -- the message replied to
    ADD COLUMN forwarded            boolean,
    ADD COLUMN frequently_forwarded boolean,
    ADD COLUMN referred_catalog_id  text,     -- a product the customer asks about
    ADD COLUMN referred_product_id  text,
    ADD COLUMN referral_source_id   text,     -- the ad or post (click-to-WhatsApp)
    ADD COLUMN referral_source_type text,
    ADD COLUMN referral_source_url  text,
    ADD COLUMN referral_headline    text,
    ADD COLUMN referral_body        text,
    ADD COLUMN referral_media_type  text,
    ADD COLUMN referral_media_url   text,     -- image_url, else video_url
    ADD COLUMN ctwa_clid            text;
-- "Conversations each ad started" (attribution).
CREATE INDEX inbound_messages_referral_idx ON inbound_messages (referral_source_id, received_at)
    WHERE referral_source_id IS NOT NULL;
-- "Replies to this message."
CREATE INDEX inbound_messages_context_idx ON inbound_messages (context_message_id)
    WHERE context_message_id IS NOT NULL;
