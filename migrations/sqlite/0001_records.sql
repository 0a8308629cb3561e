-- Records stored by the worker, keyed by the transaction id the API returned.
-- Ids are UUID text; times are RFC 3339 UTC with microseconds (they sort in time order).
CREATE TABLE records (
    transaction_id TEXT NOT NULL PRIMARY KEY,
    topic          TEXT NOT NULL,
    message        TEXT NOT NULL,
    attributes     TEXT NOT NULL DEFAULT '{}',
    received_at    TEXT NOT NULL,
    stored_at      TEXT NOT NULL
) WITHOUT ROWID;

-- Idempotency-Key header → transaction id, so a client retry returns the same id.
CREATE TABLE idempotency_keys (
    key            TEXT    NOT NULL PRIMARY KEY,
    request_hash   TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    published      INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT    NOT NULL
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
