-- Records stored by the worker, keyed by the transaction id the API returned (UUIDv7, so
-- inserts are time-ordered and index-friendly).
CREATE TABLE IF NOT EXISTS records (
    transaction_id uuid        NOT NULL PRIMARY KEY,
    topic          text        NOT NULL,
    message        text        NOT NULL,
    attributes     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    received_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT now()
);

-- No index besides the primary key: GET looks up by transaction_id, and because ids are
-- UUIDv7 the newest record (for `status`) is the last entry of the primary-key index.

-- Idempotency-Key header → transaction id, so a client retry returns the same id.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            text        NOT NULL PRIMARY KEY,
    request_hash   text        NOT NULL,
    transaction_id uuid        NOT NULL,
    published      boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at);
