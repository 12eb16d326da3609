-- Schema version 4: media messages. `media` holds the attachment descriptor (the
-- client's encoded media message: blob id, media key, hashes, mime type, name,
-- thumbnail) of a media message, NULL for text; `body` then holds the caption, so the
-- search index keeps indexing `body` only.
ALTER TABLE messages ADD COLUMN media BLOB;
