-- Bearer tokens: only the SHA-256 of each secret is kept.
CREATE TABLE tokens (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    role       text        NOT NULL,
    hash       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
