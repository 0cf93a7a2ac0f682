-- Stored projections: every version of each policy and exemption, valid for the seqs
-- from_seq <= S < to_seq (to_seq NULL: the current version), so "as the ledger stood at
-- seq S" is an index lookup, not a replay. These are not log tables: a rebuild deletes
-- and refills them, so they have no append-only triggers. A projection records how many
-- log events it has applied in projection_positions, in the same transaction as its rows.

CREATE TABLE policy_versions (
    policy_id         text   NOT NULL,
    from_seq          bigint NOT NULL,
    to_seq            bigint CHECK (to_seq > from_seq),
    app_key           text   NOT NULL,  -- casefolded app name
    organisation_keys text[] NOT NULL,  -- casefolded organisations; '*' is every organisation
    state             text   NOT NULL,  -- the PolicyState as JSON (ledger/state_codec.py)
    PRIMARY KEY (policy_id, from_seq)
);
-- Which versions of app X's policies stood at seq S?
CREATE INDEX policy_versions_app ON policy_versions (app_key, from_seq);
-- ... and now (the current versions only, however long the history grows)?
CREATE INDEX policy_versions_app_now ON policy_versions (app_key) WHERE to_seq IS NULL;

CREATE TABLE exemption_versions (
    exemption_id     text   NOT NULL,
    from_seq         bigint NOT NULL,
    to_seq           bigint CHECK (to_seq > from_seq),
    policy_id        text   NOT NULL,
    account_key      text   NOT NULL,  -- casefolded grantee account
    organisation_key text   NOT NULL,  -- casefolded grantee organisation
    devices_sd       text,             -- digest of the sealed covered devices in force
    state            text   NOT NULL,  -- the ExemptionState as JSON (ledger/state_codec.py)
    PRIMARY KEY (exemption_id, from_seq)
);
-- Which exemptions of account A in organisation O stood at seq S?
CREATE INDEX exemption_versions_account ON exemption_versions (account_key, organisation_key, from_seq);
CREATE INDEX exemption_versions_account_now ON exemption_versions (account_key, organisation_key)
    WHERE to_seq IS NULL;
CREATE INDEX exemption_versions_policy ON exemption_versions (policy_id, from_seq);

CREATE TABLE projection_positions (
    name     text   PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0)  -- log events applied: the last seq applied + 1
);

-- As of a time: the last seq recorded at or before it.
CREATE INDEX events_recorded_at ON events (recorded_at, seq);
