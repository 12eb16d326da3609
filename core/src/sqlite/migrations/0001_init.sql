-- Schema version 1: protocol records, contacts, devices, chats, messages.
CREATE TABLE local_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_key BLOB NOT NULL,
    registration_id INTEGER NOT NULL
);
CREATE TABLE identities (
    name TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    identity_key BLOB NOT NULL,
    PRIMARY KEY (name, device_id)
) WITHOUT ROWID;
CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE prekeys (id INTEGER PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE signed_prekeys (id INTEGER PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE sessions (
    name TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (name, device_id)
) WITHOUT ROWID;
CREATE TABLE sender_keys (
    name TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    distribution_id BLOB NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (name, device_id, distribution_id)
) WITHOUT ROWID;
CREATE TABLE contacts (
    name TEXT PRIMARY KEY,
    display_name TEXT,
    phone TEXT
) WITHOUT ROWID;
CREATE TABLE devices (
    name TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    registration_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, device_id)
) WITHOUT ROWID;
CREATE TABLE chats (
    id INTEGER PRIMARY KEY,
    peer TEXT NOT NULL UNIQUE,
    title TEXT
);
-- direction: 0 incoming, 1 outgoing. status: 0 pending, 1 sent, 2 delivered, 3 read, 4 failed.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id),
    sender TEXT NOT NULL,
    sender_device INTEGER NOT NULL,
    direction INTEGER NOT NULL,
    envelope_id BLOB,
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER,
    status INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_envelope ON messages(sender, sender_device, envelope_id) WHERE envelope_id IS NOT NULL;
CREATE INDEX messages_chat ON messages(chat_id, id);
