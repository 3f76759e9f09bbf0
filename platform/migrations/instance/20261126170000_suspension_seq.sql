-- Up Migration
-- The highest suspend/resume sequence number applied (or found already true):
-- a command with a lower one arrived late, after a broker retry, and is ignored.
ALTER TABLE instances ADD COLUMN suspension_seq int NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE instances DROP COLUMN suspension_seq;
