-- `message_id` loses its UNIQUE index. The ids are UUIDv7 made by the writer and never looked
-- up; the index was a fourth B-tree every publish, receive and ack had to update (perf on the
-- group-commit writer). SQLite cannot drop a column constraint, so the table is rebuilt;
-- the AUTOINCREMENT counter carries over, so a seq is never reused.
CREATE TABLE messages_v3 (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT    NOT NULL,
    queue          TEXT    NOT NULL CHECK (queue IN ('main', 'dlq')),
    body           TEXT    NOT NULL,
    attributes     TEXT    NOT NULL,
    sent_at        INTEGER NOT NULL,
    visible_at     INTEGER NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    receipt        TEXT
);
INSERT INTO messages_v3 (seq, message_id, queue, body, attributes, sent_at, visible_at, receive_count, receipt)
    SELECT seq, message_id, queue, body, attributes, sent_at, visible_at, receive_count, receipt FROM messages;
DELETE FROM sqlite_sequence WHERE name = 'messages_v3';
UPDATE sqlite_sequence SET name = 'messages_v3' WHERE name = 'messages';
DROP TABLE messages;
ALTER TABLE messages_v3 RENAME TO messages;
CREATE INDEX messages_ready ON messages (queue, visible_at, seq);
CREATE INDEX messages_by_age ON messages (queue, sent_at);
