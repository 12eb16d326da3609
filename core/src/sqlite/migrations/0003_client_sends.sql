-- Schema version 3: what the relay client needs.
-- A send is one relay request: one plaintext encrypted for every device of one
-- recipient. Its outbox entries (one per device) are sent together; the plaintext is
-- kept until the relay accepts the send, so a device added meanwhile (the relay
-- answers DeviceMismatch) can be encrypted for without asking the app again.
CREATE TABLE sends (
    id INTEGER PRIMARY KEY,
    message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    plaintext BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
-- Outbox entries written by version 2 become sends of their own (their plaintext is
-- not known: such a send cannot be re-encrypted for a new device).
INSERT INTO sends (id, message_id, recipient, plaintext, created_at)
    SELECT id, message_id, recipient, X'', created_at FROM outbox;
ALTER TABLE outbox ADD COLUMN send_id INTEGER REFERENCES sends(id) ON DELETE CASCADE;
UPDATE outbox SET send_id = id;
CREATE INDEX outbox_send ON outbox(send_id);
-- The relay's ids for accepted messages: its delivery receipts name them.
CREATE TABLE sent_envelopes (
    relay_id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    device_id INTEGER NOT NULL
);
-- Delivery receipts that arrived before the relay's answer to the send they concern
-- (the recipient can acknowledge faster than the sender hears back); applied when
-- the send completes.
CREATE TABLE early_receipts (
    relay_id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL
);
