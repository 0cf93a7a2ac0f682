-- The verifiable log: events (the leaves), stored tree nodes, signed checkpoints, keys.
-- Every log table is append-only: the triggers below refuse UPDATE, DELETE and TRUNCATE.

CREATE TABLE events (
    seq         bigint      PRIMARY KEY CHECK (seq >= 0),
    stream      text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    type        text        NOT NULL,
    recorded_at timestamptz NOT NULL,
    leaf        bytea       NOT NULL,  -- the canonical JSON bytes exactly as hashed
    leaf_hash   bytea       NOT NULL CHECK (length(leaf_hash) = 32),
    UNIQUE (stream, version)
);

-- Perfect subtrees: (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE tree_nodes (
    level smallint NOT NULL,
    idx   bigint   NOT NULL,
    hash  bytea    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE checkpoints (
    size       bigint      PRIMARY KEY,
    note       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE log_keys (
    key_id   text   PRIMARY KEY,
    vkey     text   NOT NULL,
    from_seq bigint NOT NULL
);

-- Sensitive values kept off the log; the only rows that may ever be deleted (erasure).
CREATE TABLE disclosures (
    digest     text   PRIMARY KEY,
    seq        bigint NOT NULL,
    category   text   NOT NULL,
    field      text   NOT NULL,
    disclosure bytea  NOT NULL
);
CREATE INDEX disclosures_seq ON disclosures (seq);

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'policy-ledger: % on % refused: the log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'raise_exception', HINT = 'record a new event instead of changing history';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER tree_nodes_append_only BEFORE UPDATE OR DELETE ON tree_nodes
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER tree_nodes_no_truncate BEFORE TRUNCATE ON tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER log_keys_append_only BEFORE UPDATE OR DELETE ON log_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER log_keys_no_truncate BEFORE TRUNCATE ON log_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
