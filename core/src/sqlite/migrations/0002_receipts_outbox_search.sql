-- Schema version 2: receipts, the outbox, unread counting, full-text search.
CREATE TABLE receipts (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    device TEXT NOT NULL,
    kind INTEGER NOT NULL, -- 2 delivered, 3 read
    at INTEGER NOT NULL,
    PRIMARY KEY (message_id, device, kind)
) WITHOUT ROWID;
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    message_type INTEGER NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX messages_unread ON messages(chat_id) WHERE direction = 0 AND status < 3;
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='id');
-- New rows are indexed by the store once per transaction (one INSERT ... SELECT):
-- a per-row trigger makes FTS5 flush its index at every statement savepoint, which
-- costs 60% of a queue drain. Deletes and edits are rare and keep their triggers.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
