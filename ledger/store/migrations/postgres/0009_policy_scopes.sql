-- "Which current policies ban app X for organisation O?" is asked by every current decision.
-- The index of current versions by app alone made PostgreSQL visit every current policy of
-- the app, whatever organisations it bans it for (about 50 rows on a log of 1,000,000 events,
-- to keep 1 to 7). A policy's scopes are its app and each organisation it names ('*' for
-- every one), joined by the unit separator; one GIN index of the current versions' scopes
-- finds the policies of (X, '*') and (X, O) directly. No policy that bans X for O is missed;
-- a name holding the separator could bring a wrong row too, which the rules (which read
-- app and organisations again) set aside.
CREATE FUNCTION policy_scopes(app_key text, organisation_keys text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT array_agg(app_key || chr(31) || o) FROM unnest(organisation_keys) AS o $$;
-- Without pending lists: a read never scans a backlog of unmerged inserts.
CREATE INDEX policy_versions_scopes_now ON policy_versions USING gin (policy_scopes(app_key, organisation_keys))
    WITH (fastupdate = off) WHERE to_seq IS NULL;
DROP INDEX policy_versions_app_now;
