-- Retention: expired messages are found by age within one queue, not by a scan.
CREATE INDEX messages_by_age ON messages (queue, sent_at);
