-- The casefolded account and organisation of each exemption version compare by their
-- bytes, like the ids (0007) and like SQLite: they are only ever matched for equality, and
-- the database's collation made every comparison a call to the C library. Building the two
-- indexes by account (of 937,000 versions, as a full rebuild does) takes about a quarter
-- less time: 2.0 s against 2.6 s.
ALTER TABLE exemption_versions
    ALTER COLUMN account_key TYPE text COLLATE "C",
    ALTER COLUMN organisation_key TYPE text COLLATE "C";
