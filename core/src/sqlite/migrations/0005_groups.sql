-- Schema version 5: groups. A group's chat is a row of `chats` whose peer is
-- "group:<hex id>" and whose title is the group's name. `group_members` holds the
-- state of the newest accepted update (admin: may change membership and name).
-- `group_key_holders` tracks, per member device, which of this device's sender-key
-- chains it was given; a holder that is no longer a recipient makes the next send
-- rotate the chain. A group send keeps, in `sends.plaintext`, the group envelope
-- template (sender-key message + the key share for devices found missing later).
CREATE TABLE groups (
    id BLOB PRIMARY KEY,
    chat_id INTEGER NOT NULL UNIQUE REFERENCES chats(id),
    name TEXT NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE group_members (
    group_id BLOB NOT NULL REFERENCES groups(id),
    name TEXT NOT NULL,
    admin INTEGER NOT NULL,
    PRIMARY KEY (group_id, name)
) WITHOUT ROWID;
CREATE TABLE group_key_holders (
    group_id BLOB NOT NULL,
    name TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    chain_id INTEGER NOT NULL,
    PRIMARY KEY (group_id, name, device_id)
) WITHOUT ROWID;
ALTER TABLE sends ADD COLUMN group_id BLOB;
