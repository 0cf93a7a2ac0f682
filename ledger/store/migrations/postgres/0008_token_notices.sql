-- Creating or revoking a token tells whoever listens on channel policy_ledger_tokens (the
-- services, which remember the tokens they have looked up) with the schema, at commit, as
-- appends are told on policy_ledger_appends (see 0006). A service forgets every token it
-- remembers when it hears this, so a revocation holds from the next request it answers
-- after the notice arrives.
CREATE FUNCTION ledger_notify_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('policy_ledger_tokens', TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;

CREATE TRIGGER tokens_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_notify_tokens();
