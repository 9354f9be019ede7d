-- Issue 16 §1, §2: the business and contact identity and the group of every event, the
-- message a `message.edit` or `message.revoke` changes, and a flow reply's name and answers.
-- Null where the event has none and on rows stored before (their `raw` still holds what was
-- sent).
ALTER TABLE inbound_messages
    ADD COLUMN phone_number_id        text,   -- the business number's id (reply through it)
    ADD COLUMN business_account_id    text,   -- the WhatsApp Business Account (`entry[].id`)
    ADD COLUMN contact_wa_id          text,   -- the customer's ids, as sent
    ADD COLUMN contact_user_id        text,   -- business-scoped user id
    ADD COLUMN contact_parent_user_id text,
    ADD COLUMN contact_username       text,
    ADD COLUMN group_id               text,   -- a group message's group
    ADD COLUMN group_participant      text,   -- its sender: E.164, else wa_id, else user id
    ADD COLUMN original_message_id    text,   -- the message an edit or revoke changes
    ADD COLUMN flow_name              text,   -- a flow reply (interactive nfm_reply)
    ADD COLUMN flow_response          jsonb;  -- its answers, when they are a JSON object
ALTER TABLE message_status_events
    ADD COLUMN phone_number_id        text,
    ADD COLUMN business_account_id    text,
    ADD COLUMN contact_user_id        text,
    ADD COLUMN group_id               text,   -- a status of a message sent to a group
    ADD COLUMN group_participant      text;   -- whose status it is
-- "The conversation of a customer known only by a business-scoped user id."
CREATE INDEX inbound_messages_user_id_idx ON inbound_messages (contact_user_id, received_at DESC)
    WHERE contact_user_id IS NOT NULL;
-- "What was said in this group."
CREATE INDEX inbound_messages_group_idx ON inbound_messages (group_id, received_at DESC)
    WHERE group_id IS NOT NULL;
-- "Was this message edited or deleted?"
CREATE INDEX inbound_messages_original_idx ON inbound_messages (original_message_id)
    WHERE original_message_id IS NOT NULL;
