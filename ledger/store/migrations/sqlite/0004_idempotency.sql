-- Idempotency-Key: a retried command returns the first answer instead of appending again.
CREATE TABLE idempotency (
    scope        TEXT    NOT NULL,  -- the token id (or 'anonymous') that used the key
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,  -- SHA-256 of method, path and body
    status       INTEGER,           -- NULL while the first request is still running
    body         BLOB,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (scope, key)
);
