-- A batch's rows go in through functions: settle_claims (the Idempotency-Keys its events
-- answer) and append_batch (its events, the tree nodes they complete, their disclosures, a
-- checkpoint, and those keys). A writer holding the log's lock in its transaction calls
-- append_batch itself. append_at takes the lock, checks that the log ends where a batch
-- sealed ahead of the lock assumed (size, last leaf, signing key, the versions of the
-- batch's streams, which of its keys are taken: what writer.py sealed it on), and only then
-- stores it: a batch in one statement, committed as it returns, where a transaction of
-- lock, head, append and commit takes four round trips. When the log is not where assumed,
-- it stores nothing and returns false: the writer seals the batch again under the lock.
-- Under READ COMMITTED each statement in a function sees what committed before it began, so
-- the checks see everything committed before the lock was had. Under REPEATABLE READ or
-- SERIALIZABLE (a database or role whose default is set so) the calling statement's snapshot,
-- taken before the wait for the lock, would hide what committed meanwhile: there append_at
-- returns false at once, and every batch takes the longer way (BEGIN and LOCK, then the head
-- read, whose snapshot is taken after the lock). The wait for the lock and the inserts are one
-- statement: a statement_timeout covers both together.

CREATE FUNCTION settle_claims(claim_scopes text[], claim_keys text[], claim_hashes text[], claim_seqs bigint[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- None of the keys is taken (the writer asked, under the lock); a claim an earlier
    -- version left unsettled (its request recorded nothing) is taken over.
    INSERT INTO idempotency (scope, key, request_hash, seq)
    SELECT * FROM unnest(claim_scopes, claim_keys, claim_hashes, claim_seqs)
    ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, seq = excluded.seq, created_at = now()
    WHERE idempotency.seq IS NULL AND idempotency.status IS NULL;
END $$;

CREATE FUNCTION append_batch(
    event_seqs bigint[], event_streams text[], event_versions integer[], event_types text[],
    event_times timestamptz[], event_leaves bytea[], event_hashes bytea[],
    node_levels smallint[], node_idxs bigint[], node_hashes bytea[],
    disclosure_digests text[], disclosure_seqs bigint[], disclosure_categories text[], disclosure_fields text[],
    disclosure_values bytea[],
    checkpoint_size bigint, checkpoint_note bytea,  -- no checkpoint: a size below 0
    claim_scopes text[], claim_keys text[], claim_hashes text[], claim_seqs bigint[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (seq, stream, version, type, recorded_at, leaf, leaf_hash)
    SELECT * FROM unnest(event_seqs, event_streams, event_versions, event_types, event_times, event_leaves,
                         event_hashes);
    INSERT INTO tree_nodes (level, idx, hash) SELECT * FROM unnest(node_levels, node_idxs, node_hashes);
    INSERT INTO disclosures (digest, seq, category, field, disclosure)
    SELECT * FROM unnest(disclosure_digests, disclosure_seqs, disclosure_categories, disclosure_fields,
                         disclosure_values);
    INSERT INTO checkpoints (size, note) SELECT checkpoint_size, checkpoint_note WHERE checkpoint_size >= 0
    ON CONFLICT DO NOTHING;
    PERFORM settle_claims(claim_scopes, claim_keys, claim_hashes, claim_seqs);
END $$;

CREATE FUNCTION append_at(
    at_size bigint, at_leaf_hash bytea, at_keys_from bigint, at_streams text[], at_versions integer[],
    at_scopes text[], at_keys text[], at_taken boolean[],
    event_seqs bigint[], event_streams text[], event_versions integer[], event_types text[],
    event_times timestamptz[], event_leaves bytea[], event_hashes bytea[],
    node_levels smallint[], node_idxs bigint[], node_hashes bytea[],
    disclosure_digests text[], disclosure_seqs bigint[], disclosure_categories text[], disclosure_fields text[],
    disclosure_values bytea[],
    checkpoint_size bigint, checkpoint_note bytea,
    claim_scopes text[], claim_keys text[], claim_hashes text[], claim_seqs bigint[]
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN false;
    END IF;
    LOCK TABLE events IN EXCLUSIVE MODE;  -- as every writer's transaction takes it first
    IF coalesce((SELECT e.seq + 1 FROM events e ORDER BY e.seq DESC LIMIT 1), 0) <> at_size
       OR (at_size > 0 AND (SELECT e.leaf_hash FROM events e WHERE e.seq = at_size - 1) <> at_leaf_hash)
       OR (SELECT coalesce(max(k.from_seq), 0) FROM log_keys k) > at_keys_from
       OR EXISTS (
           SELECT FROM unnest(at_streams, at_versions) AS a(stream, version)
           WHERE coalesce((SELECT max(e.version) FROM events e WHERE e.stream = a.stream), 0) <> a.version)
       OR EXISTS (
           SELECT FROM unnest(at_scopes, at_keys, at_taken) AS c(scope, key, taken)
           WHERE coalesce((SELECT i.seq IS NOT NULL OR i.status IS NOT NULL FROM idempotency i
                           WHERE i.scope = c.scope AND i.key = c.key), false) <> c.taken)
    THEN
        RETURN false;
    END IF;
    PERFORM append_batch(event_seqs, event_streams, event_versions, event_types, event_times, event_leaves,
                         event_hashes, node_levels, node_idxs, node_hashes, disclosure_digests, disclosure_seqs,
                         disclosure_categories, disclosure_fields, disclosure_values, checkpoint_size,
                         checkpoint_note, claim_scopes, claim_keys, claim_hashes, claim_seqs);
    RETURN true;
END $$;
