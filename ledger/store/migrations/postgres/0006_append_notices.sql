-- Each statement that appends events or checkpoints tells whoever listens on channel
-- policy_ledger_appends (the services' read caches) that the log has moved on.
-- PostgreSQL delivers the notice when the transaction commits, and drops it on rollback.
-- The payload is the log's schema, so that logs kept in different schemas of one database
-- are told apart. A projection rebuild sends the same notice when it swaps its tables in.
CREATE FUNCTION ledger_notify_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('policy_ledger_appends', TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify_append AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_notify_append();
CREATE TRIGGER checkpoints_notify_append AFTER INSERT ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_notify_append();
