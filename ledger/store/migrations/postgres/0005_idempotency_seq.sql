-- The seq of the event a claimed Idempotency-Key's request recorded, written in the same
-- transaction as the event: a retry after a crash between commit and answer replays it.
ALTER TABLE idempotency ADD COLUMN seq bigint;
