-- Up Migration
-- The last storage measurement of each instance (runtime usage()), shown by
-- the API as `storage` and refreshed by health-probe every few minutes and by
-- quota-set. storage_exceeded remembers the side of the quota the last
-- measurement was on, so instance.quota_exceeded is sent once per crossing.
ALTER TABLE instances
  ADD COLUMN storage_used_bytes bigint,
  ADD COLUMN storage_limit_bytes bigint,
  ADD COLUMN storage_measured_at timestamptz,
  ADD COLUMN storage_exceeded boolean NOT NULL DEFAULT false,
  -- When a sweep last claimed the instance for measuring (success or not): spreads the work.
  ADD COLUMN storage_checked_at timestamptz;

-- Down Migration
ALTER TABLE instances
  DROP COLUMN storage_checked_at,
  DROP COLUMN storage_exceeded,
  DROP COLUMN storage_measured_at,
  DROP COLUMN storage_limit_bytes,
  DROP COLUMN storage_used_bytes;
