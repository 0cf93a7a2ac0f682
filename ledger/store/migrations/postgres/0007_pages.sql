-- Lists are read a page at a time: the next LIMIT policies (or exemptions) after a cursor,
-- in the order of their ids. Ids compare by their bytes, as Python sorts them and SQLite
-- compares text, whatever collation the database was made with; the primary keys then
-- serve "the next page after this id" in order. The exemptions under one policy are found
-- and paged through by one index.
ALTER TABLE policy_versions ALTER COLUMN policy_id TYPE text COLLATE "C";
ALTER TABLE exemption_versions
    ALTER COLUMN exemption_id TYPE text COLLATE "C",
    ALTER COLUMN policy_id TYPE text COLLATE "C";
DROP INDEX exemption_versions_policy;
CREATE INDEX exemption_versions_policy ON exemption_versions (policy_id, exemption_id);
