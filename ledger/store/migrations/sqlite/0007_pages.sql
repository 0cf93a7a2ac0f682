-- Lists are read a page at a time (see postgres/0007). SQLite compares text by its bytes
-- already; the exemptions under one policy are found and paged through by one index.
DROP INDEX exemption_versions_policy;
CREATE INDEX exemption_versions_policy ON exemption_versions (policy_id, exemption_id);
