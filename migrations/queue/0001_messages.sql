-- The embedded queue: one table for the main queue and its dead-letter queue.
-- Times are Unix milliseconds.
CREATE TABLE messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT    NOT NULL UNIQUE,
    queue          TEXT    NOT NULL CHECK (queue IN ('main', 'dlq')),
    body           TEXT    NOT NULL,
    attributes     TEXT    NOT NULL,
    sent_at        INTEGER NOT NULL,
    visible_at     INTEGER NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    receipt        TEXT
);

-- Receive scans visible messages of one queue in arrival order.
CREATE INDEX messages_ready ON messages (queue, visible_at, seq);
