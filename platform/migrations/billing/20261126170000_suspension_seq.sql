-- Up Migration
-- Each suspend or resume lifecycle sends carries the next number of this
-- counter, so instance-ops can tell a late (retried) command from a newer one.
ALTER TABLE lifecycle_subscriptions ADD COLUMN suspension_seq int NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE lifecycle_subscriptions DROP COLUMN suspension_seq;
