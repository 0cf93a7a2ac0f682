-- The verifiable log: events (the leaves), stored tree nodes, signed checkpoints, keys.
-- Every log table is append-only: the triggers below refuse UPDATE and DELETE
-- (SQLite has no TRUNCATE; an unqualified DELETE fires the same triggers).

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY CHECK (seq >= 0),
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    type        TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL,
    leaf        BLOB    NOT NULL,  -- the canonical JSON bytes exactly as hashed
    leaf_hash   BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
    UNIQUE (stream, version)
);

-- Perfect subtrees: (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE tree_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    size       INTEGER PRIMARY KEY,
    note       BLOB    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE log_keys (
    key_id   TEXT    PRIMARY KEY,
    vkey     TEXT    NOT NULL,
    from_seq INTEGER NOT NULL
);

-- Sensitive values kept off the log; the only rows that may ever be deleted (erasure).
CREATE TABLE disclosures (
    digest     TEXT    PRIMARY KEY,
    seq        INTEGER NOT NULL,
    category   TEXT    NOT NULL,
    field      TEXT    NOT NULL,
    disclosure BLOB    NOT NULL
);
CREATE INDEX disclosures_seq ON disclosures (seq);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'policy-ledger: UPDATE on events refused: the log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'policy-ledger: DELETE on events refused: the log is append-only'); END;
CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'policy-ledger: UPDATE on tree_nodes refused: the log is append-only'); END;
CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'policy-ledger: DELETE on tree_nodes refused: the log is append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'policy-ledger: UPDATE on checkpoints refused: the log is append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'policy-ledger: DELETE on checkpoints refused: the log is append-only'); END;
CREATE TRIGGER log_keys_no_update BEFORE UPDATE ON log_keys
BEGIN SELECT RAISE(ABORT, 'policy-ledger: UPDATE on log_keys refused: the log is append-only'); END;
CREATE TRIGGER log_keys_no_delete BEFORE DELETE ON log_keys
BEGIN SELECT RAISE(ABORT, 'policy-ledger: DELETE on log_keys refused: the log is append-only'); END;
