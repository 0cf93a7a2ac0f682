-- Idempotency-Key: a retried command returns the first answer instead of appending again.
CREATE TABLE idempotency (
    scope        text        NOT NULL,  -- the token id (or 'anonymous') that used the key
    key          text        NOT NULL,
    request_hash text        NOT NULL,  -- SHA-256 of method, path and body
    status       integer,               -- NULL while the first request is still running
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
